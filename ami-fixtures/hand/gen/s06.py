from amigen import OUT, Modern, expect, miss, task

NAME = "lost-hangup"
s = Modern("Asterisk Call Manager/7.0.3", 1700300000.0, fully_booted_uptime=912)
s.set_counter("PJSIP", 0x3c)
s.uid_seq = 208
s.at(1700301520.550731)
did, num, name = "74951234567", "79052223344", "PETROV S"
a = s.chan("PJSIP/trunk-provider-%s" % s.suffix("PJSIP"), "from-trunk", did, 4, num, name)
s.newexten(a, "from-trunk", did, 1, "Answer", "")
s.wait(0.02)
s.newstate(a, 6)
s.newexten(a, "from-trunk", did, 2, "Goto", "ivr-main,s,1")
s.newexten(a, "ivr-main", "s", 1, "Background", "custom/ivr-welcome")
s.wait(2.61)
s.varset(a, "BACKGROUNDSTATUS", "SUCCESS")
s.newexten(a, "ivr-main", "1", 1, "Queue", "sales,t,,,120")
t_join = s.t
s.qjoin(a, "sales", 1, 1)
s.moh(a, True)
legs = []
for ext, aname in (("101", "Anna Petrova"), ("102", "Oleg Sidorov")):
    ph = s.chan("PJSIP/%s-%s" % (ext, s.suffix("PJSIP")), "from-internal", "s", 0, ext, aname,
                linkedid=a.linkedid, conn_num=num, conn_name=name)
    t = s.agentcalled(a, ph, "sales", "PJSIP/%s" % ext, ext)
    s.dialbegin(a, ph, ext)
    legs.append([ext, ph, t])
s.wait(0.15)
for ext, ph, t in legs:
    s.newstate(ph, 5)
    s.dialstate(a, ph, "RINGING")
s.at(legs[0][2] + 10.0)
ends = {}
for ext, ph, t in legs:
    ends[ext] = s.agentrna(a, ph, "sales", "PJSIP/%s" % ext, ext, 10000)
for ext, ph, t in legs:
    s.dialend(a, ph, "NOANSWER")
for ext, ph, t in legs:
    s.dialend(a, ph, "CANCEL")
    s.hangup(ph, 0)
last = s.t
# ... and then the connection drops: nothing more about this call ever arrives
s.wait(1.8)
for ext, ph, t in legs:
    s.qmemberstatus("sales", ext, "PJSIP/%s" % ext, "PJSIP/%s" % ext, 1)
s.save(OUT + "/%s.ami" % NAME)
agents = [(ext, ends[ext] - t) for ext, ph, t in legs]
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "queue", last - a.first, False, agents)], tasks=[task(num)])
print(NAME, last - a.first, agents)
