from amigen import OUT, expect
from legacy import Legacy

NAME = "asterisk18-legacy-dial-answered"
s = Legacy("1.8", "Asterisk Call Manager/1.1", 1350000000.0)
s.set_counter("SIP", 0x5)
s.uid_seq = 12
s.at(1350037712.640112)
did, num, name = "74957654321", "79267001122", "VOLKOVA M"
a = s.chan("SIP/provider-%s" % s.suffix("SIP"), "from-trunk", did, 0, num, name)
s.newstate(a, 4)
s.newexten(a, "from-trunk", did, 1, "NoOp", "DID %s" % did)
s.newexten(a, "from-trunk", did, 2, "Dial", "SIP/101,20,t")
b = s.chan("SIP/101-%s" % s.suffix("SIP"), "from-internal", "", 0, "101", "Reception")
b.conn_num, b.conn_name = num, name
s.dial_begin(a, b, "101")
s.wait(0.31)
s.newstate(b, 5)
a.conn_num, a.conn_name = "101", "Reception"
s.newstate(a, 5)
# 101 picks up after about 4 s
s.wait(3.87)
s.newstate(b, 6)
s.varset(a, "DIALSTATUS", "ANSWER")
s.newstate(a, 6)
s.bridge(True, a, b)
s.varset(a, "BRIDGEPEER", b.name)
s.varset(b, "BRIDGEPEER", a.name)
# 31 s conversation; the client hangs up
s.wait(31.2)
s.bridge(False, a, b)
s.hangup(b, 16)
s.dial_end(a, "ANSWER")
s.hangup(a, 16)
s.save(OUT + "/%s.ami" % NAME)
expect(OUT + "/%s.expect.json" % NAME, NAME, [], not_missed=[num])
print(NAME, "answered")
