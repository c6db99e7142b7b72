from amigen import OUT, Modern, expect, miss, task

NAME = "sip-trunk-ringgroup-busy"
s = Modern("Asterisk Call Manager/5.0.5", 1700125200.0, systemname="pbx1")
s.set_counter("SIP", 0xa)
s.uid_seq = 8
s.at(1700127433.518200)
did, num, name = "74957654321", "79035550102", "SMIRNOVA E"
a = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, num, name)
s.newstate(a, 4)
s.newexten(a, "from-trunk", did, 1, "NoOp", "Inbound call from ${CALLERID(all)} to %s" % did)
s.newexten(a, "from-trunk", did, 2, "Set", "CDR(did)=%s" % did)
s.newexten(a, "from-trunk", did, 3, "Dial", "SIP/101&SIP/102,20")
b1 = s.chan("SIP/101-%s" % s.suffix("SIP"), "from-internal", "s", 0, "101", "Reception", linkedid=a.linkedid,
            conn_num=num, conn_name=name)
b2 = s.chan("SIP/102-%s" % s.suffix("SIP"), "from-internal", "s", 0, "102", "Sales desk", linkedid=a.linkedid,
            conn_num=num, conn_name=name)
t1 = s.dialbegin(a, b1, "101")
t2 = s.dialbegin(a, b2, "102")
# 102 is registered but its phone answers 480 Temporarily Unavailable
s.wait(0.061)
e2 = s.dialend(a, b2, "CHANUNAVAIL")
s.hangup(b2, 20)
# 101 is on another call: 486 Busy Here
s.wait(0.402)
e1 = s.dialend(a, b1, "BUSY")
s.hangup(b1, 17)
s.varset(a, "DIALEDTIME", "0")
s.varset(a, "ANSWEREDTIME", "")
s.varset(a, "DIALSTATUS", "BUSY")
s.newexten(a, "from-trunk", did, 4, "Answer", "")
s.wait(0.012)
s.newstate(a, 6)
s.newexten(a, "from-trunk", did, 5, "Playback", "custom/all-lines-busy")
s.wait(5.37)
s.hanguprequest(a, 16)
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
agents = [("101", e1 - t1), ("102", e2 - t2)]
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "busy", a.hung - a.first, False, agents)], tasks=[task(num)])
print(NAME, a.hung - a.first, agents)
