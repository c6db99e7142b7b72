from amigen import OUT, Modern, expect, miss, task
from freepbx import pjsip_trunk_call, local_pair, dial_one

NAME = "freepbx-answered-ringgroup"
s = Modern("Asterisk Call Manager/7.0.3", 1700210000.0, systemname="pbx1", fully_booted_uptime=4021)
s.set_counter("PJSIP", 0x2a)
s.set_counter("Local", 0x11)
s.uid_seq = 112
s.at(1700211845.030911)
did, num, name = "74953334455", "79857771234", "OOO Vector"
a = pjsip_trunk_call(s, did, num, name)
s.newexten(a, "from-pstn", did, 6, "Goto", "ext-group,600,1")
g = "ext-group"
s.newexten(a, g, "600", 1, "Set", "__RINGGROUP_INDEX=600")
s.varset(a, "__RINGGROUP_INDEX", "600")
s.newexten(a, g, "600", 2, "Set", "RingGroupMethod=ringall")
s.varset(a, "RingGroupMethod", "ringall")
s.newexten(a, g, "600", 3, "Set", "__NODEST=600")
s.varset(a, "__NODEST", "600")
s.newexten(a, g, "600", 4, "Macro", "dial,20,tr,101-102")
for k, v in [("MACRO_DEPTH", "1"), ("MACRO_EXTEN", "600"), ("MACRO_CONTEXT", g), ("MACRO_PRIORITY", "4"),
             ("ARG1", "20"), ("ARG2", "tr"), ("ARG3", "101-102")]:
    s.varset(a, k, v)
s.newexten(a, "macro-dial", "s", 1, "Set", "ds=Local/101@from-internal/n&Local/102@from-internal/n")
s.varset(a, "ds", "Local/101@from-internal/n&Local/102@from-internal/n")
s.newexten(a, "macro-dial", "s", 2, "Dial", "Local/101@from-internal/n&Local/102@from-internal/n,20,tr")
legs = []
for ext, aname, host in [("101", "Anna Petrova", "192.168.10.51"), ("102", "Oleg Sidorov", "192.168.10.52")]:
    one, two = local_pair(s, a, ext, "from-internal", app="AppDial")
    t = s.dialbegin(a, one, "%s@from-internal/n" % ext)
    legs.append([ext, aname, host, one, two, t])
for leg in legs:
    leg.append(dial_one(s, leg[4], leg[0], leg[1], leg[2], via_queue=False))
s.wait(0.22)
for leg in legs:
    ext, aname, host, one, two, t, ph = leg
    s.newstate(ph, 5)
    s.dialstate(two, ph, "RINGING")
    s.newstate(one, 5)
    s.dialstate(a, one, "RINGING")
# 102 picks up
s.at(1700211853.377016)
l101, l102 = legs
_, _, _, one2, two2, _, ph2 = l102
s.newstate(ph2, 6)
s.dialend(two2, ph2, "ANSWER")
s.newstate(two2, 6)
br1 = "5f3a9c1e-2b7d-4e0a-9d51-77c1a0b4e812"
s.bridgecreate(br1)
s.bridgeenter(br1, 1, ph2)
s.bridgeenter(br1, 2, two2)
s.newstate(one2, 6)
s.dialend(a, one2, "ANSWER")
_, _, _, one1, two1, _, ph1 = l101
s.dialend(a, one1, "CANCEL")
s.hanguprequest(two1, 26)
s.hangup(one1, 26)
s.dialend(two1, ph1, "CANCEL")
s.hangup(ph1, 26)
s.hanguprequest(two1, 16, soft=True)
s.hangup(two1, 26)
s.varset(a, "DIALSTATUS", "ANSWER")
s.newstate(a, 6)
br2 = "a0d2c6f4-91e3-4c55-8b0e-3e6f2d8c1a07"
s.bridgecreate(br2)
s.bridgeenter(br2, 1, one2)
s.bridgeenter(br2, 2, a)
# 25 s conversation, then the client hangs up
s.at(1700211878.902240)
s.hanguprequest(a, 16)
s.bridgeleave(br2, 1, a)
s.varset(a, "DIALEDTIME", "33")
s.varset(a, "ANSWEREDTIME", "25")
s.hangup(a, 16)
s.bridgeleave(br2, 0, one2)
s.bridgedestroy(br2)
s.hanguprequest(two2, 16, soft=True)
s.hangup(one2, 16)
s.bridgeleave(br1, 1, two2)
s.bridgeleave(br1, 0, ph2)
s.bridgedestroy(br1)
s.hangup(ph2, 16)
s.hangup(two2, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME, [], not_missed=[num])
print(NAME, "answered")
