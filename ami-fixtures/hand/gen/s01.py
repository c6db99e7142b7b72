from amigen import OUT, Modern, expect, miss, task
from freepbx import pjsip_trunk_call, local_pair, dial_one

NAME = "pjsip-trunk-freepbx-queue-abandon"
s = Modern("Asterisk Call Manager/7.0.3", 1700038800.0, fully_booted_uptime=86400 * 3 + 5123)
s.set_counter("PJSIP", 0x12)
s.set_counter("Local", 0x5)
s.uid_seq = 34
s.at(1700040117.204411)
did, num, name = "74951234567", "79161230001", "IVANOV I"
a = pjsip_trunk_call(s, did, num, name)
s.newexten(a, "from-pstn", did, 6, "Goto", "ext-queues,400,1")
q = "ext-queues"
s.newexten(a, q, "400", 1, "Set", "__BLKVM_OVERRIDE=BLKVM/400/%s" % a.name)
s.varset(a, "__BLKVM_OVERRIDE", "BLKVM/400/%s" % a.name)
s.newexten(a, q, "400", 2, "Set", "__BLKVM_BASE=400")
s.varset(a, "__BLKVM_BASE", "400")
s.newexten(a, q, "400", 3, "Answer", "")
s.wait(0.021)
s.newstate(a, 6)
s.newexten(a, q, "400", 4, "Set", "__NODEST=400")
s.varset(a, "__NODEST", "400")
s.newexten(a, q, "400", 5, "Playback", "custom/please-hold")
s.wait(2.84)
s.newexten(a, q, "400", 6, "Set", "QAINFO=")
s.newexten(a, q, "400", 7, "Queue", "400,t,,,300,,,,,")
s.qjoin(a, "400", 1, 1)
s.moh(a, True)
members = [("101", "Anna Petrova", "192.168.10.51"), ("102", "Oleg Sidorov", "192.168.10.52")]
legs = []
for ext, aname, host in members:
    one, two = local_pair(s, a, ext, "from-queue")
    t_called = s.agentcalled(a, one, "400", "Local/%s@from-queue/n" % ext, ext)
    s.dialbegin(a, one, "%s@from-queue/n" % ext)
    legs.append([ext, aname, host, one, two, t_called])
for leg in legs:
    ext, aname, host, one, two, _ = leg
    ph = dial_one(s, two, ext, aname, host)
    leg.append(ph)
s.wait(0.19)
for leg in legs:
    ext, aname, host, one, two, _, ph = leg
    s.newstate(ph, 5)
    s.dialstate(two, ph, "RINGING")
    s.newstate(one, 5)
    s.dialstate(a, one, "RINGING")
    s.wait(0.035)
for leg in legs:
    s.qmemberstatus("400", leg[0], "Local/%s@from-queue/n" % leg[0], "PJSIP/%s" % leg[0], 6)
# the caller gives up while both phones ring (BYE from the provider)
s.at(1700040131.884122)
s.hanguprequest(a, 16)
s.moh(a, False)
ends = {}
for leg in legs:
    ends[leg[0]] = s.dialend(a, leg[3], "CANCEL")
for leg in legs:
    ext, aname, host, one, two, _, ph = leg
    s.dialend(a, one, "CANCEL")
    s.hanguprequest(two, 0)
    s.hangup(one, 0)
    s.dialend(two, ph, "CANCEL")
    s.hangup(ph, 16)
    s.hanguprequest(two, 16, soft=True)
    s.hangup(two, 0)
hold = int(s.t - 1700040120.1)
s.qabandon(a, "400", 1, 1, 11)
s.qleave(a, "400", 1, 0)
s.varset(a, "QUEUEPOSITION", "1")
s.hanguprequest(a, 16, soft=True)
s.hangup(a, 16)
for leg in legs:
    s.qmemberstatus("400", leg[0], "Local/%s@from-queue/n" % leg[0], "PJSIP/%s" % leg[0], 1)
s.save(OUT + "/%s.ami" % NAME)
agents = [(leg[0], ends[leg[0]] - leg[5]) for leg in legs]
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(num, did, "ringing", a.hung - a.first, False, agents)], tasks=[task(num)])
print(NAME, a.hung - a.first, agents)
