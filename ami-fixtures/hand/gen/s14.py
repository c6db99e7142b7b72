from amigen import OUT, Modern, expect, miss, task

NAME = "sip16-custom-contexts-followme"
# Asterisk 16, chan_sip only, a hand-written dialplan with its own context names: the carrier
# peer `sipnet` enters `incoming-sipnet` (not a FreePBX name), `GotoIfTime` picks day or night,
# the day menu rings `Dial(SIP/101&SIP/102,20)`, then a follow-me to a mobile through the trunk.
s = Modern("Asterisk Call Manager/5.0.5", 1700200000.0)
s.set_counter("SIP", 0x30)
s.uid_seq = 40
did = "74957770000"
ctx = "incoming-sipnet"

# call 1: night. GotoIfTime falls through to the closed announcement; the caller hangs up.
s.at(1700200011.250117)
n1, m1 = "89031112201", "IVANOV P"
a = s.chan("SIP/sipnet-%s" % s.suffix("SIP"), ctx, did, 0, n1, m1)
s.newstate(a, 4)
s.newexten(a, ctx, did, 1, "NoOp", "call from %s" % n1)
s.newexten(a, ctx, did, 2, "GotoIfTime", "09:00-18:00,mon-fri,*,*?day,1")
s.newexten(a, ctx, did, 3, "Answer", "")
s.wait(0.03)
s.newstate(a, 6)
s.newexten(a, ctx, did, 4, "Playback", "office/we-are-closed")
s.wait(4.12)
s.hanguprequest(a, 16)
s.hangup(a, 16)



def day_menu(number, name, menu_secs):
    """A caller in the day: the time branch jumps to `day`, the menu plays."""
    c = s.chan("SIP/sipnet-%s" % s.suffix("SIP"), ctx, did, 0, number, name)
    s.newstate(c, 4)
    s.newexten(c, ctx, did, 1, "NoOp", "call from %s" % number)
    s.newexten(c, ctx, did, 2, "GotoIfTime", "00:00-23:59,mon-sun,*,*?day,1")
    s.newexten(c, ctx, "day", 1, "Answer", "")
    s.wait(0.02)
    s.newstate(c, 6)
    s.newexten(c, ctx, "day", 2, "Background", "office/menu")
    s.wait(menu_secs)
    return c


# call 2: day. Menu, key 2 rings two phones; the caller gives up while they ring and the
# dialplan's h extension runs.
s.at(1700200101.501334)
n2, m2 = "84957001122", "OOO ROMASHKA"
b = day_menu(n2, m2, 3.2)
s.newexten(b, ctx, "2", 1, "Dial", "SIP/101&SIP/102,20,tT")
b1 = s.chan("SIP/101-%s" % s.suffix("SIP"), "office-phones", "s", 0, "101", "Accounting",
            linkedid=b.linkedid, conn_num=n2, conn_name=m2)
b2 = s.chan("SIP/102-%s" % s.suffix("SIP"), "office-phones", "s", 0, "102", "Director",
            linkedid=b.linkedid, conn_num=n2, conn_name=m2)
tb1 = s.dialbegin(b, b1, "101")
tb2 = s.dialbegin(b, b2, "102")
s.wait(0.08)
s.newstate(b1, 5)
s.dialstate(b, b1, "RINGING")
s.newstate(b2, 5)
s.dialstate(b, b2, "RINGING")
s.wait(9.4)
s.hanguprequest(b, 16)
eb1 = s.dialend(b, b1, "CANCEL")
eb2 = s.dialend(b, b2, "CANCEL")
s.hangup(b1, 16)
s.hangup(b2, 16)
s.varset(b, "DIALSTATUS", "CANCEL")
s.newexten(b, ctx, "h", 1, "NoOp", "hangup %s" % n2)
s.hangup(b, 16)

# call 3: day, key 3: 101 rings 15 s, then the follow-me dials the director's mobile through the
# trunk, which answers 503 (congestion); the caller hears "sorry" and hangs up.
s.at(1700200301.100917)
n3, m3 = "89165554433", "PETROVA A"
c = day_menu(n3, m3, 2.7)
s.newexten(c, ctx, "3", 1, "Dial", "SIP/101,15,tT")
c1 = s.chan("SIP/101-%s" % s.suffix("SIP"), "office-phones", "s", 0, "101", "Accounting",
            linkedid=c.linkedid, conn_num=n3, conn_name=m3)
tc1 = s.dialbegin(c, c1, "101")
s.wait(0.05)
s.newstate(c1, 5)
s.dialstate(c, c1, "RINGING")
s.wait(14.95)
ec1 = s.dialend(c, c1, "NOANSWER")
s.hangup(c1, 19)
s.varset(c, "DIALSTATUS", "NOANSWER")
s.newexten(c, ctx, "3", 2, "Dial", "SIP/sipnet/89169990011,20")
c2 = s.chan("SIP/sipnet-%s" % s.suffix("SIP"), "incoming-sipnet", "s", 0, "89169990011", "",
            linkedid=c.linkedid, conn_num=n3, conn_name=m3)
tc2 = s.dialbegin(c, c2, "sipnet/89169990011")
s.wait(1.31)
ec2 = s.dialend(c, c2, "CONGESTION")
s.hangup(c2, 127)
s.varset(c, "DIALSTATUS", "CONGESTION")
s.newexten(c, ctx, "3", 3, "Playback", "office/sorry")
s.wait(3.4)
s.hanguprequest(c, 16)
s.hangup(c, 16)

s.save(OUT + "/%s.ami" % NAME)
m_c = miss(n3, did, "timeout", c.hung - c.first, False, [("101", ec1 - tc1)])
m_c["forwards"] = [{"number": "89169990011", "ring_seconds": round(ec2 - tc2, 2), "outcome": "congestion"}]
expect(OUT + "/%s.expect.json" % NAME, NAME,
       [miss(n1, did, "after_hours", a.hung - a.first),
        miss(n2, did, "ringing", b.hung - b.first, False, [("101", eb1 - tb1), ("102", eb2 - tb2)]),
        m_c],
       # Tasks hold the normalized number (national prefix 8 -> country code 7).
       tasks=[task("7" + n[1:]) for n in (n1, n2, n3)],
       description="Asterisk 16 chan_sip, own context names (incoming-sipnet, office-phones): "
                   "night via GotoIfTime fall-through, ringing with the h extension, follow-me "
                   "forward through the trunk after the phone rang out")
print(NAME, a.hung - a.first, b.hung - b.first, c.hung - c.first)
