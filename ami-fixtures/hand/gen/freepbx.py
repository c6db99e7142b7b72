"""FreePBX-style building blocks (Asterisk 18, PJSIP)."""
from amigen import Modern


def pjsip_trunk_call(s, did, num, name, trunk="trunk-provider"):
    """An INVITE from the provider: PJSIP channel in from-pstn, FreePBX ext-did steps."""
    sfx = s.suffix("PJSIP")
    a = s.chan("PJSIP/%s-%s" % (trunk, sfx), "from-pstn", did, 4, num, name)
    s.newexten(a, "from-pstn", did, 1, "Set", "__FROM_DID=%s" % did)
    s.varset(a, "__FROM_DID", did)
    s.newexten(a, "from-pstn", did, 2, "Gosub", "app-blacklist-check,s,1()")
    s.newexten(a, "app-blacklist-check", "s", 1, "GotoIf", "0?blacklisted")
    s.newexten(a, "app-blacklist-check", "s", 2, "Set", "CALLERID(name)=%s" % name)
    s.newexten(a, "app-blacklist-check", "s", 3, "Return", "")
    s.varset(a, "GOSUB_RETVAL", "")
    s.newexten(a, "from-pstn", did, 3, "ExecIf", "0?Set(CALLERID(name)=%s)" % num)
    s.newexten(a, "from-pstn", did, 4, "Set", "__CALLINGNAMEPRES_SV=allowed_not_screened")
    s.varset(a, "__CALLINGNAMEPRES_SV", "allowed_not_screened")
    s.newexten(a, "from-pstn", did, 5, "Set", "__CALLINGNUMPRES_SV=allowed_not_screened")
    s.varset(a, "__CALLINGNUMPRES_SV", "allowed_not_screened")
    return a


def macro_vars(s, c, ctx, exten, prio, args):
    s.varset(c, "MACRO_DEPTH", "1")
    s.varset(c, "MACRO_EXTEN", exten)
    s.varset(c, "MACRO_CONTEXT", ctx)
    s.varset(c, "MACRO_PRIORITY", prio)
    for i, a in enumerate(args, 1):
        s.varset(c, "ARG%d" % i, a)


def local_pair(s, caller, ext, ctx, app="AppQueue"):
    """A Local/<ext>@<ctx>/n member leg: ;1 dialled by the caller, ;2 running dialplan."""
    sfx = s.suffix("Local")
    one = s.chan("Local/%s@%s-%s;1" % (ext, ctx, sfx), ctx, ext, 0, "<unknown>", "<unknown>", linkedid=caller.linkedid)
    two = s.chan("Local/%s@%s-%s;2" % (ext, ctx, sfx), ctx, ext, 4, "<unknown>", "<unknown>", linkedid=caller.linkedid)
    s.outgoing_line(one, app)
    one.conn_num, one.conn_name = caller.num, caller.cname
    s.newcallerid(one, caller.num, caller.cname)
    s.varset(one, "DIALEDPEERNUMBER", "%s@%s/n" % (ext, ctx))
    s.varset(two, "DIALEDPEERNUMBER", "%s@%s/n" % (ext, ctx))
    two.conn_num, two.conn_name = caller.num, caller.cname
    s.newcallerid(two, caller.num, caller.cname)
    s.localbridge(one, two, ctx, ext)
    return one, two


def dial_one(s, two, ext, agent_name, host, via_queue=True):
    """The ;2 half runs FreePBX from-queue / macro-dial-one and dials the phone."""
    if via_queue:
        s.newexten(two, "from-queue", ext, 1, "Set", "QAGENT=%s" % ext)
        s.varset(two, "QAGENT", ext)
        s.newexten(two, "from-queue", ext, 2, "Set", "__FROMQ=true")
        s.varset(two, "__FROMQ", "true")
        s.newexten(two, "from-queue", ext, 3, "Goto", "from-queue-exten-only,%s,1" % ext)
        ctx = "from-queue-exten-only"
        s.newexten(two, ctx, ext, 1, "Set", "RingGroupMethod=none")
        s.varset(two, "RingGroupMethod", "none")
        s.newexten(two, ctx, ext, 2, "Macro", "dial-one,,HhTtr,%s" % ext)
        macro_vars(s, two, ctx, ext, 2, ["", "HhTtr", ext])
    else:
        ctx = "from-internal"
        s.newexten(two, ctx, ext, 1, "Set", "__RINGTIMER=${IF($[${DB(AMPUSER/%s/ringtimer)} > 0]?${DB(AMPUSER/%s/ringtimer)}:${RINGTIMER_DEFAULT})}" % (ext, ext))
        s.varset(two, "__RINGTIMER", "15")
        s.newexten(two, ctx, ext, 2, "Macro", "dial-one,,HhTtr,%s" % ext)
        macro_vars(s, two, ctx, ext, 2, ["", "HhTtr", ext])
    s.newexten(two, "macro-dial-one", "s", 1, "Set", "DEXTEN=%s" % ext)
    s.varset(two, "DEXTEN", ext)
    s.newexten(two, "macro-dial-one", "s", 2, "Set", "DIALSTATUS_CW=")
    s.varset(two, "DIALSTATUS_CW", "")
    dstring = "PJSIP/%s/sip:%s@%s:5060" % (ext, ext, host)
    s.newexten(two, "macro-dial-one", "s", 3, "Set", "DSTRING=%s" % dstring)
    s.varset(two, "DSTRING", dstring)
    s.newexten(two, "macro-dial-one", "s", 4, "Dial", "%s,,HhTtr" % dstring)
    sfx = s.suffix("PJSIP")
    ph = s.chan("PJSIP/%s-%s" % (ext, sfx), "from-internal", "s", 0, ext, agent_name,
                linkedid=two.linkedid, conn_num=two.num, conn_name=two.cname)
    s.dialbegin(two, ph, "%s/sip:%s@%s:5060" % (ext, ext, host))
    return ph
