from amigen import OUT, Modern, expect, miss, task

NAME = "escaped-names-cp1251"
s = Modern("Asterisk Call Manager/5.0.5", 1700800000.0)
s.set_counter("SIP", 0x90)
s.uid_seq = 900
did = "74951234567"
# call 1: a name Asterisk 13.5+ C-escapes on the wire (O'Brien "Pat" \ Ltd)
s.at(1700801104.005512)
n1, m1 = "74991112233", "O\\'Brien \\\"Pat\\\" \\\\ Ltd"
a = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, n1, m1)
s.newstate(a, 4)
s.newexten(a, "from-trunk", did, 1, "Answer", "")
s.wait(0.017)
s.newstate(a, 6)
s.newexten(a, "from-trunk", did, 2, "Set", "CALLERNAME=${CALLERID(name)}")
s.varset(a, "CALLERNAME", m1)
s.newexten(a, "from-trunk", did, 3, "Goto", "ivr-main,s,1")
s.newexten(a, "ivr-main", "s", 1, "Background", "custom/ivr-welcome")
s.wait(2.74)
s.hanguprequest(a, 16)
s.hangup(a, 16)
# call 2: chan_sip passes the provider's cp1251 display name through as raw bytes
s.at(1700801162.810044)
n2 = "79263334455"
m2 = "Иванов Пётр".encode("cp1251")
b = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, n2, m2)
s.newstate(b, 4)
s.newexten(b, "from-trunk", did, 1, "Answer", "")
s.wait(0.018)
s.newstate(b, 6)
s.newexten(b, "from-trunk", did, 2, "Set", "CALLERNAME=${CALLERID(name)}")
s.varset(b, "CALLERNAME", m2)
s.newexten(b, "from-trunk", did, 3, "Set", b"NOTE=" + "Звонок с сайта: C:\\temp".encode("cp1251"))
s.varset(b, "NOTE", "Звонок с сайта: C:\\\\temp".encode("cp1251"))
s.newexten(b, "from-trunk", did, 4, "Queue", "sales,t,,,60")
t_q = s.t
s.qjoin(b, "sales", 1, 1)
s.moh(b, True)
ph = s.chan("SIP/101-%s" % s.suffix("SIP"), "from-internal", "s", 0, "101", "Анна".encode("cp1251"),
            linkedid=b.linkedid, conn_num=n2, conn_name=m2)
t_called = s.agentcalled(b, ph, "sales", "SIP/101", "101")
s.dialbegin(b, ph, "101")
s.wait(0.12)
s.newstate(ph, 5)
s.dialstate(b, ph, "RINGING")
s.wait(6.88)
s.hanguprequest(b, 16)
s.moh(b, False)
t_end = s.dialend(b, ph, "CANCEL")
s.dialend(b, ph, "CANCEL")
s.hangup(ph, 0)
s.qabandon(b, "sales", 1, 1, int(s.t - t_q))
s.qleave(b, "sales", 1, 0)
s.hangup(b, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(n1, did, "ivr", a.hung - a.first),
        miss(n2, did, "ringing", b.hung - b.first, False, [("101", t_end - t_called)])],
       tasks=[task(n1), task(n2)])
print(NAME, a.hung - a.first, b.hung - b.first, t_end - t_called)
