from amigen import OUT, expect, miss, task
from legacy import Legacy

NAME = "asterisk11-legacy-queue"
s = Legacy("11", "Asterisk Call Manager/1.3", 1400000000.0)
s.set_counter("SIP", 0x21)
s.set_counter("Local", 0xc)
s.uid_seq = 57
s.at(1400143207.118204)
did, num, name = "74951112233", "79164447788", "KUZNETSOV A"
a = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, num, name)
s.newstate(a, 4)
s.newexten(a, "from-trunk", did, 1, "Answer", "")
s.wait(0.018)
s.newstate(a, 6)
s.newexten(a, "from-trunk", did, 2, "Set", "CDR(did)=%s" % did)
s.newexten(a, "from-trunk", did, 3, "Queue", "support,t,,,60")
t_join = s.t
s.join(a, "support", 1, 1)
legs = []
for ext in ("101", "102"):
    sfx = s.suffix("Local")
    one = s.chan("Local/%s@from-queue-%s;1" % (ext, sfx), "from-queue", ext, 0, num, name)
    two = s.chan("Local/%s@from-queue-%s;2" % (ext, sfx), "from-queue", ext, 4, num, name)
    t = s.agentcalled(a, one, "support", "Local/%s@from-queue/n" % ext, ext)
    legs.append([ext, one, two, t])
for leg in legs:
    ext, one, two, t = leg
    s.newexten(two, "from-queue", ext, 1, "Dial", "SIP/%s,,t" % ext)
    ph = s.chan("SIP/%s-%s" % (ext, s.suffix("SIP")), "from-internal", "s", 0, ext, "Agent " + ext)
    ph.conn_num, ph.conn_name = num, name
    s.dial_begin(two, ph, ext)
    leg.append(ph)
s.wait(0.23)
for leg in legs:
    ext, one, two, t, ph = leg
    s.newstate(ph, 5)
    s.newstate(one, 5)
    s.qmemberstatus("support", "Local/%s@from-queue/n" % ext, ext, 6)
# nobody answers within the member timeout (15 s)
s.at(legs[0][3] + 15.0)
ends = {}
for leg in legs:
    ext, one, two, t, ph = leg
    ends[ext] = s.agentrna(a, "support", "Local/%s@from-queue/n" % ext, ext, 15000)
for leg in legs:
    ext, one, two, t, ph = leg
    s.hangup(one, 0)
    s.dial_end(two, "CANCEL")
    s.hangup(ph, 0)
    s.hangup(two, 16)
    s.qmemberstatus("support", "Local/%s@from-queue/n" % ext, ext, 1)
# retry = 5 s; the caller gives up 3.2 s into the pause, with no phone ringing
s.wait(3.2)
s.hanguprequest(a, 16)
s.qabandon(a, "support", 1, 1, int(s.t - t_join))
s.leave(a, "support", 0, 1)
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
agents = [(leg[0], ends[leg[0]] - leg[3]) for leg in legs]
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "queue", a.hung - a.first, False, agents)], tasks=[task(num)])
print(NAME, a.hung - a.first, agents)
