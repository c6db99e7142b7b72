from amigen import OUT, Modern, expect, miss

NAME = "withheld-caller"
s = Modern("Asterisk Call Manager/7.0.3", 1700700000.0, fully_booted_uptime=2210)
s.set_counter("PJSIP", 0x70)
s.uid_seq = 640
s.at(1700702644.402518)
did = "74951234567"
a = s.chan("PJSIP/trunk-provider-%s" % s.suffix("PJSIP"), "from-pstn", did, 4, "anonymous", "Anonymous")
s.newexten(a, "from-pstn", did, 1, "Set", "CALLERID(num-pres)=prohib_not_screened")
s.newcallerid(a, pres="32 (Presentation Restricted, Not Screened)")
s.newexten(a, "from-pstn", did, 2, "Answer", "")
s.wait(0.02)
s.newstate(a, 6)
s.newexten(a, "from-pstn", did, 3, "Goto", "ivr-main,s,1")
s.newexten(a, "ivr-main", "s", 1, "Background", "custom/ivr-welcome")
s.wait(3.12)
s.hanguprequest(a, 16)
s.varset(a, "BACKGROUNDSTATUS", "FAILED")
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss("", did, "ivr", a.hung - a.first)], tasks=[])
print(NAME, a.hung - a.first)
