from amigen import OUT, Modern, expect, miss, task

NAME = "queue-timeout-voicemail-sip"
s = Modern("Asterisk Call Manager/5.0.5", 1700500000.0)
s.set_counter("SIP", 0x31)
s.uid_seq = 77
s.at(1700503310.204977)
did, num, name = "74951234567", "79998881122", "ORLOV K"
a = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, num, name)
s.newstate(a, 4)
s.newexten(a, "from-trunk", did, 1, "Answer", "")
s.wait(0.016)
s.newstate(a, 6)
s.newexten(a, "from-trunk", did, 2, "Queue", "sales,t,,,30")
t_q = s.t
s.qjoin(a, "sales", 1, 1)
s.moh(a, True)
agents = []
for rnd in range(2):
    legs = []
    for ext, aname in (("101", "Anna Petrova"), ("102", "Oleg Sidorov")):
        ph = s.chan("SIP/%s-%s" % (ext, s.suffix("SIP")), "from-internal", "s", 0, ext, aname,
                    linkedid=a.linkedid, conn_num=num, conn_name=name)
        t = s.agentcalled(a, ph, "sales", "SIP/%s" % ext, ext)
        s.dialbegin(a, ph, ext)
        legs.append([ext, ph, t])
    s.wait(0.09)
    for ext, ph, t in legs:
        s.newstate(ph, 5)
        s.dialstate(a, ph, "RINGING")
    s.at(legs[0][2] + 12.0)
    for ext, ph, t in legs:
        agents.append((ext, s.agentrna(a, ph, "sales", "SIP/%s" % ext, ext, 12000) - t))
    for ext, ph, t in legs:
        s.dialend(a, ph, "NOANSWER")
    for ext, ph, t in legs:
        s.dialend(a, ph, "CANCEL")
        s.hangup(ph, 0)
    s.wait(3.0)  # retry
# 30 s max wait reached: the queue gives up between rings
s.moh(a, False)
s.qabandon(a, "sales", 1, 1, int(s.t - t_q))
s.qleave(a, "sales", 1, 0)
s.varset(a, "QUEUESTATUS", "TIMEOUT")
s.newexten(a, "from-trunk", did, 3, "VoiceMail", "100@default,su")
s.wait(14.61)  # the client records a message and hangs up
s.hanguprequest(a, 16)
s.varset(a, "VMSTATUS", "SUCCESS")
s.newexten(a, "from-trunk", "h", 1, "NoOp", "Call ended")
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "timeout", a.hung - a.first, True, agents)], tasks=[task(num)])
print(NAME, a.hung - a.first, agents)
