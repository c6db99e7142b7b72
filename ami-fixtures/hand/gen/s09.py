from amigen import OUT, Modern, expect, miss, task

NAME = "queue-joinempty"
s = Modern("Asterisk Call Manager/7.0.3", 1700600000.0, systemname="pbx1", fully_booted_uptime=30211)
s.set_counter("PJSIP", 0x50)
s.uid_seq = 415
s.at(1700604021.331900)
did, num, name = "74959990000", "79217773311", "LEBEDEV P"
a = s.chan("PJSIP/trunk-provider-%s" % s.suffix("PJSIP"), "from-pstn", did, 4, num, name)
s.newexten(a, "from-pstn", did, 1, "Answer", "")
s.wait(0.019)
s.newstate(a, 6)
s.newexten(a, "from-pstn", did, 2, "Queue", "billing,,,,60")
s.varset(a, "QUEUESTATUS", "JOINEMPTY")
s.newexten(a, "from-pstn", did, 3, "VoiceMail", "300@default,u")
s.wait(9.42)
s.hanguprequest(a, 16)
s.newexten(a, "from-pstn", "h", 1, "NoOp", "VMSTATUS=${VMSTATUS}")
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "no_agents", a.hung - a.first, True, [])], tasks=[task(num)])
print(NAME, a.hung - a.first)
