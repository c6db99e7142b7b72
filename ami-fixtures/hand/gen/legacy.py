"""Asterisk 1.8 / 11 manager event layouts (no Linkedid, Dial with SubEvent, Join/Leave, Bridge)."""
from amigen import Stream, Chan, STATE, CAUSE


class Legacy(Stream):
    def __init__(self, version, *a, **k):
        super().__init__(*a, **k)
        self.v = version  # "1.8" or "11"

    def chan(self, name, context, exten, state, num, cname, emit=True):
        u = self.uid()
        c = Chan(self, name, u, None, context, exten, state, num, cname, "", "")
        if emit:
            self.newchannel(c)
        return c

    def touch(self, c):
        if c.first is None:
            c.first = self.t

    def newchannel(self, c):
        self.ev("Newchannel", "call,all", [
            ("Channel", c.name), ("ChannelState", c.state), ("ChannelStateDesc", STATE[c.state]),
            ("CallerIDNum", c.num), ("CallerIDName", c.cname), ("AccountCode", ""),
            ("Exten", c.exten), ("Context", c.context), ("Uniqueid", c.uniqueid)])
        self.touch(c)

    def newstate(self, c, state):
        c.state = state
        self.ev("Newstate", "call,all", [
            ("Channel", c.name), ("ChannelState", c.state), ("ChannelStateDesc", STATE[c.state]),
            ("CallerIDNum", c.num), ("CallerIDName", c.cname), ("ConnectedLineNum", c.conn_num),
            ("ConnectedLineName", c.conn_name), ("Uniqueid", c.uniqueid)])

    def newexten(self, c, context, exten, prio, app, data):
        c.context, c.exten, c.prio = context, exten, prio
        self.ev("Newexten", "dialplan,all", [
            ("Channel", c.name), ("Context", context), ("Extension", exten), ("Priority", prio),
            ("Application", app), ("AppData", data), ("Uniqueid", c.uniqueid)])
        self.touch(c)

    def varset(self, c, var, val):
        self.ev("VarSet", "dialplan,all", [("Channel", c.name), ("Variable", var), ("Value", val), ("Uniqueid", c.uniqueid)])

    def newcallerid(self, c, num, name, pres="0 (Presentation Allowed, Not Screened)"):
        c.num, c.cname = num, name
        self.ev("NewCallerid", "call,all", [("Channel", c.name), ("CallerIDNum", num), ("CallerIDName", name),
                                            ("Uniqueid", c.uniqueid), ("CID-CallingPres", pres)])

    def dial_begin(self, src, dst, dialstring):
        f = [("SubEvent", "Begin"), ("Channel", src.name), ("Destination", dst.name),
             ("CallerIDNum", src.num), ("CallerIDName", src.cname)]
        if self.v == "11":
            f += [("ConnectedLineNum", src.conn_num), ("ConnectedLineName", src.conn_name)]
        f += [("UniqueID", src.uniqueid), ("DestUniqueID", dst.uniqueid), ("Dialstring", dialstring)]
        return self.ev("Dial", "call,all", f)

    def dial_end(self, src, status):
        return self.ev("Dial", "call,all", [("SubEvent", "End"), ("Channel", src.name), ("UniqueID", src.uniqueid),
                                            ("DialStatus", status)])

    def hanguprequest(self, c, cause=None, soft=False):
        f = [("Channel", c.name), ("Uniqueid", c.uniqueid)]
        if cause is not None:
            f.append(("Cause", cause))
        self.ev("SoftHangupRequest" if soft else "HangupRequest", "call,all", f)

    def hangup(self, c, cause):
        t = self.ev("Hangup", "call,all", [
            ("Channel", c.name), ("Uniqueid", c.uniqueid), ("CallerIDNum", c.num), ("CallerIDName", c.cname),
            ("ConnectedLineNum", c.conn_num), ("ConnectedLineName", c.conn_name),
            ("Cause", cause), ("Cause-txt", CAUSE[cause])])
        c.hung = t
        return t

    def bridge(self, link, c1, c2):
        return self.ev("Bridge", "call,all", [
            ("Bridgestate", "Link" if link else "Unlink"), ("Bridgetype", "core"),
            ("Channel1", c1.name), ("Channel2", c2.name), ("Uniqueid1", c1.uniqueid), ("Uniqueid2", c2.uniqueid),
            ("CallerID1", c1.num), ("CallerID2", c2.num)])

    # app_queue (1.8/11)
    def join(self, c, queue, pos, count):
        self.ev("Join", "call,all", [("Channel", c.name), ("CallerIDNum", c.num), ("CallerIDName", c.cname),
                                     ("ConnectedLineNum", c.conn_num), ("ConnectedLineName", c.conn_name),
                                     ("Queue", queue), ("Position", pos), ("Count", count), ("Uniqueid", c.uniqueid)])

    def leave(self, c, queue, count, pos):
        self.ev("Leave", "call,all", [("Channel", c.name), ("Queue", queue), ("Count", count), ("Position", pos),
                                      ("Uniqueid", c.uniqueid)])

    def qabandon(self, c, queue, pos, orig, hold):
        self.ev("QueueCallerAbandon", "agent,all", [("Queue", queue), ("Uniqueid", c.uniqueid), ("Position", pos),
                                                    ("OriginalPosition", orig), ("HoldTime", hold)])

    def agentcalled(self, c, dest, queue, iface, member):
        return self.ev("AgentCalled", "agent,all", [
            ("Queue", queue), ("AgentCalled", iface), ("AgentName", member), ("ChannelCalling", c.name),
            ("DestinationChannel", dest.name), ("CallerIDNum", c.num), ("CallerIDName", c.cname),
            ("ConnectedLineNum", c.conn_num), ("ConnectedLineName", c.conn_name),
            ("Context", c.context), ("Extension", c.exten), ("Priority", c.prio), ("Uniqueid", c.uniqueid)])

    def agentrna(self, c, queue, iface, member, ms):
        return self.ev("AgentRingNoAnswer", "agent,all", [
            ("Queue", queue), ("Uniqueid", c.uniqueid), ("Channel", c.name), ("Member", iface),
            ("MemberName", member), ("Ringtime", ms)])

    def qmemberstatus(self, queue, location, member, status, calls=0, lastcall=0):
        self.ev("QueueMemberStatus", "agent,all", [
            ("Queue", queue), ("Location", location), ("MemberName", member), ("StateInterface", location.rsplit("/n", 1)[0]),
            ("Membership", "static"), ("Penalty", 0), ("CallsTaken", calls), ("LastCall", lastcall),
            ("Status", status), ("Paused", 0)])
