"""Small helpers to write AMI byte streams event by event (modern 12+ and legacy 1.8/11 layouts)."""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

CRLF = b"\r\n"
STATE = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user response",
         20: "Subscriber absent", 21: "Call Rejected", 26: "Answered elsewhere", 127: "Interworking, unspecified"}


def enc(v):
    if isinstance(v, bytes):
        return v
    return str(v).encode("utf-8")


class Chan:
    def __init__(self, s, name, uniqueid, linkedid, context, exten, state, num, cname,
                 conn_num="<unknown>", conn_name="<unknown>", prio=1):
        self.s = s
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.prio = prio
        self.state = state
        self.num = num
        self.cname = cname
        self.conn_num = conn_num
        self.conn_name = conn_name
        self.lang = "en"
        self.acct = ""
        self.first = None
        self.hung = None

    def snap(self, p=""):
        return [
            (p + "Channel", self.name), (p + "ChannelState", self.state),
            (p + "ChannelStateDesc", STATE[self.state]), (p + "CallerIDNum", self.num),
            (p + "CallerIDName", self.cname), (p + "ConnectedLineNum", self.conn_num),
            (p + "ConnectedLineName", self.conn_name), (p + "Language", self.lang),
            (p + "AccountCode", self.acct), (p + "Context", self.context),
            (p + "Exten", self.exten), (p + "Priority", self.prio),
            (p + "Uniqueid", self.uniqueid), (p + "Linkedid", self.linkedid),
        ]


class Stream:
    """One AMI session: banner, login reply, then events with increasing Timestamps."""

    def __init__(self, banner, t0, systemname=None, fully_booted_uptime=None, action_id="missedcalls-1"):
        self.buf = bytearray()
        self.now = int(round(t0 * 1_000_000))
        self.systemname = systemname
        self.seq = 0
        self.uid_seq = 0
        self.counters = {}
        self.buf += enc(banner) + CRLF
        self.raw([("Response", "Success"), ("ActionID", action_id), ("Message", "Authentication accepted")])
        fb = [("Event", "FullyBooted"), ("Privilege", "system,all")]
        if fully_booted_uptime is not None:
            fb += [("Uptime", fully_booted_uptime), ("LastReload", fully_booted_uptime)]
        fb += [("Status", "Fully Booted")]
        self.raw(fb)

    # ---- time -------------------------------------------------------------------------
    def at(self, t):
        """Jump to absolute time t (seconds)."""
        nt = int(round(t * 1_000_000))
        assert nt >= self.now, (t, self.now / 1e6)
        self.now = nt

    def wait(self, secs):
        self.now += int(round(secs * 1_000_000))

    def tick(self):
        self.seq += 1
        self.now += 5 + (self.seq * 7919) % 37
        return self.now

    @property
    def t(self):
        return self.now / 1_000_000

    def stamp(self):
        return "%d.%06d" % divmod(self.now, 1_000_000)

    # ---- wire -------------------------------------------------------------------------
    def raw(self, pairs):
        for k, v in pairs:
            self.buf += enc(k) + b": " + enc(v) + CRLF
        self.buf += CRLF

    def ev(self, name, priv, fields, stamp=True):
        self.tick()
        pairs = [("Event", name), ("Privilege", priv)]
        if stamp:
            pairs.append(("Timestamp", self.stamp()))
        if self.systemname:
            pairs.append(("SystemName", self.systemname))
        self.raw(pairs + list(fields))
        return self.t

    def save(self, path):
        with open(path, "wb") as f:
            f.write(bytes(self.buf))

    # ---- ids --------------------------------------------------------------------------
    def uid(self):
        u = "%d.%d" % (self.now // 1_000_000, self.uid_seq)
        self.uid_seq += 1
        return (self.systemname + "-" + u) if self.systemname else u

    def suffix(self, tech, width=8):
        n = self.counters.get(tech, 0)
        self.counters[tech] = n + 1
        return "%0*x" % (width, n)

    def set_counter(self, tech, n):
        self.counters[tech] = n


class Modern(Stream):
    """Asterisk 12+ layouts (channel snapshot blocks, DialBegin/DialEnd, QueueCaller*)."""

    def chan(self, name, context, exten, state, num, cname, linkedid=None, conn_num="<unknown>",
             conn_name="<unknown>", emit=True):
        u = self.uid()
        c = Chan(self, name, u, linkedid or u, context, exten, state, num, cname, conn_num, conn_name)
        if emit:
            self.newchannel(c)
        return c

    def touch(self, c):
        if c.first is None:
            c.first = self.t

    def newchannel(self, c):
        self.ev("Newchannel", "call,all", c.snap())
        self.touch(c)

    def newexten(self, c, context, exten, prio, app, data):
        c.context, c.exten, c.prio = context, exten, prio
        self.ev("Newexten", "dialplan,all", c.snap() + [("Extension", exten), ("Application", app), ("AppData", data)])
        self.touch(c)

    def outgoing_line(self, c, app="AppDial"):
        self.ev("Newexten", "dialplan,all", c.snap() + [("Extension", c.exten), ("Application", app), ("AppData", "(Outgoing Line)")])

    def varset(self, c, var, val):
        self.ev("VarSet", "dialplan,all", c.snap() + [("Variable", var), ("Value", val)])
        self.touch(c)

    def newstate(self, c, state):
        c.state = state
        self.ev("Newstate", "call,all", c.snap())

    def newcallerid(self, c, num=None, name=None, pres="0 (Presentation Allowed, Not Screened)"):
        if num is not None:
            c.num = num
        if name is not None:
            c.cname = name
        self.ev("NewCallerid", "call,all", c.snap() + [("CID-CallingPres", pres)])

    def newconnectedline(self, c, num, name):
        c.conn_num, c.conn_name = num, name
        self.ev("NewConnectedLine", "call,all", c.snap())

    def localbridge(self, one, two, context, exten, optimization="No"):
        self.ev("LocalBridge", "call,all", one.snap("LocalOne") + two.snap("LocalTwo") + [
            ("Context", context), ("Exten", exten), ("LocalOptimization", optimization)])

    def dialbegin(self, src, dst, dialstring):
        f = (src.snap() if src else []) + dst.snap("Dest") + [("DialString", dialstring)]
        return self.ev("DialBegin", "call,all", f)

    def dialstate(self, src, dst, status):
        self.ev("DialState", "call,all", (src.snap() if src else []) + dst.snap("Dest") + [("DialStatus", status)])

    def dialend(self, src, dst, status):
        return self.ev("DialEnd", "call,all", (src.snap() if src else []) + dst.snap("Dest") + [("DialStatus", status)])

    def hanguprequest(self, c, cause, soft=False):
        self.ev("SoftHangupRequest" if soft else "HangupRequest", "call,all", c.snap() + [("Cause", cause)])

    def hangup(self, c, cause):
        t = self.ev("Hangup", "call,all", c.snap() + [("Cause", cause), ("Cause-txt", CAUSE[cause])])
        c.hung = t
        return t

    def moh(self, c, start, klass="default"):
        if start:
            self.ev("MusicOnHoldStart", "call,all", c.snap() + [("Class", klass)])
        else:
            self.ev("MusicOnHoldStop", "call,all", c.snap())

    # queue
    def qjoin(self, c, queue, pos, count):
        self.ev("QueueCallerJoin", "agent,all", c.snap() + [("Queue", queue), ("Position", pos), ("Count", count)])

    def qleave(self, c, queue, pos, count):
        self.ev("QueueCallerLeave", "agent,all", c.snap() + [("Queue", queue), ("Position", pos), ("Count", count)])

    def qabandon(self, c, queue, pos, orig, hold):
        self.ev("QueueCallerAbandon", "agent,all", c.snap() + [("Queue", queue), ("Position", pos),
                                                               ("OriginalPosition", orig), ("HoldTime", hold)])

    def agentcalled(self, c, d, queue, iface, member):
        return self.ev("AgentCalled", "agent,all", c.snap() + d.snap("Dest") + [("Queue", queue), ("Interface", iface), ("MemberName", member)])

    def agentrna(self, c, d, queue, iface, member, ms):
        return self.ev("AgentRingNoAnswer", "agent,all", c.snap() + d.snap("Dest") + [("Queue", queue), ("Interface", iface), ("MemberName", member), ("RingTime", ms)])

    def agentconnect(self, c, d, queue, iface, member, hold, ring):
        return self.ev("AgentConnect", "agent,all", c.snap() + d.snap("Dest") + [("Queue", queue), ("Interface", iface), ("MemberName", member), ("HoldTime", hold), ("RingTime", ring)])

    def agentcomplete(self, c, d, queue, iface, member, hold, talk, reason):
        f = c.snap() + (d.snap("Dest") if d else []) + [("Queue", queue), ("Interface", iface), ("MemberName", member), ("HoldTime", hold), ("TalkTime", talk), ("Reason", reason)]
        self.ev("AgentComplete", "agent,all", f)

    def qmemberstatus(self, queue, member, iface, state_iface, status, incall=0, calls=0, lastcall=0, paused=0):
        self.ev("QueueMemberStatus", "agent,all", [
            ("Queue", queue), ("MemberName", member), ("Interface", iface), ("StateInterface", state_iface),
            ("Membership", "static"), ("Penalty", 0), ("CallsTaken", calls), ("LastCall", lastcall),
            ("LastPause", 0), ("LoginTime", int(self.t) - 86000), ("InCall", incall), ("Status", status),
            ("Paused", paused), ("PausedReason", ""), ("Ringinuse", 0), ("Wrapuptime", 0)])

    # bridges
    def bridge_fields(self, br, n, p=""):
        return [(p + "BridgeUniqueid", br), (p + "BridgeType", "basic"), (p + "BridgeTechnology", "simple_bridge"),
                (p + "BridgeCreator", "<unknown>"), (p + "BridgeName", "<unknown>"),
                (p + "BridgeNumChannels", n), (p + "BridgeVideoSourceMode", "none")]

    def bridgecreate(self, br):
        self.ev("BridgeCreate", "call,all", self.bridge_fields(br, 0))

    def bridgeenter(self, br, n, c, swap=None):
        f = self.bridge_fields(br, n) + c.snap()
        if swap:
            f.append(("SwapUniqueid", swap))
        self.ev("BridgeEnter", "call,all", f)

    def bridgeleave(self, br, n, c):
        self.ev("BridgeLeave", "call,all", self.bridge_fields(br, n) + c.snap())

    def bridgedestroy(self, br):
        self.ev("BridgeDestroy", "call,all", self.bridge_fields(br, 0))


def expect(path, name, missed, not_missed=(), tasks=(), description=None):
    d = {"name": name}
    if description:
        d["description"] = description
    d["captures"] = [name + ".ami"]
    d["missed"] = missed
    d["not_missed_callers"] = list(not_missed)
    d["tasks"] = list(tasks)
    d["task_count"] = len(tasks)
    with open(path, "w") as f:
        json.dump(d, f, indent=1, ensure_ascii=False)
        f.write("\n")


def miss(caller, did, reason, wait, voicemail=False, agents=()):
    return {"caller": caller, "did": did, "loss_reason": reason, "wait_seconds": round(wait, 2),
            "voicemail": voicemail, "agents": [{"agent": a, "ring_seconds": round(s, 2)} for a, s in agents]}


def task(number, status=("open", "overdue"), count=1):
    return {"number": number, "status": list(status), "missed_count": count}
