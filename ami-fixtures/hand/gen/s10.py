from amigen import OUT, Modern, expect, miss, task

NAME = "afterhours-gotoiftime"
s = Modern("Asterisk Call Manager/7.0.3", 1700160000.0, fully_booted_uptime=50400)
s.set_counter("PJSIP", 0x60)
s.uid_seq = 512
did = "74951234567"
# call 1 (Thursday 21:40 Moscow): GotoIfTime sends it to support-closed
s.at(1700160012.771204)
n1, m1 = "79104445566", "FEDOROVA L"
a = s.chan("PJSIP/trunk-provider-%s" % s.suffix("PJSIP"), "from-pstn", did, 4, n1, m1)
s.newexten(a, "from-pstn", did, 1, "GotoIfTime", "09:00-18:00,mon-fri,*,*?support-open,s,1")
s.newexten(a, "from-pstn", did, 2, "Goto", "support-closed,s,1")
s.newexten(a, "support-closed", "s", 1, "Answer", "")
s.wait(0.02)
s.newstate(a, 6)
s.newexten(a, "support-closed", "s", 2, "Playback", "custom/closed-hours")
s.wait(6.43)
s.newexten(a, "support-closed", "s", 3, "Hangup", "")
s.hanguprequest(a, 16, soft=True)
s.hangup(a, 16)
# call 2: the night flag is a channel variable, and the PBX hangs up at once
s.at(1700160051.090117)
n2, m2 = "79035559900", "GROMOV V"
b = s.chan("PJSIP/trunk-provider-%s" % s.suffix("PJSIP"), "from-pstn", did, 4, n2, m2)
s.newexten(b, "from-pstn", did, 1, "Set", "AFTER_HOURS=${DB(pbx/nightmode)}")
s.varset(b, "AFTER_HOURS", "1")
s.newexten(b, "from-pstn", did, 2, "GotoIf", "1?closed")
s.newexten(b, "from-pstn", did, 10, "Hangup", "")
s.hanguprequest(b, 16, soft=True)
s.hangup(b, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(n1, did, "after_hours", a.hung - a.first), miss(n2, did, "after_hours", b.hung - b.first)],
       tasks=[task(n1), task(n2)])
print(NAME, a.hung - a.first, b.hung - b.first)
