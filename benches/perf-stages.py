"""Groups a `perf report` of a replay by stage: CPU nanoseconds per event, one column a thread.

    perf record -F 4999 -o /tmp/replay.data missedcalld replay --db /dev/shm/x.sqlite STREAM
    perf report -i /tmp/replay.data -n --no-children --sort comm,sym --stdio -g none \
        | python3 benches/perf-stages.py 4999 EVENTS

A symbol goes to the first stage whose pattern it matches; the store writer's thread is one
stage. The table is the one in docs/performance.md.
"""
import collections
import re
import sys

freq = float(sys.argv[1])
events = float(sys.argv[2])
rules = [
 ('kernel and read (page-cache copy, page faults, wake-ups, buffer zeroing)', r'\[k\]|read_chunk|__memset|libc_read'),
 ('frame + parse (one pass: boundaries, header spans)', r'decode_parsed|leading_message|scan_lines|split_to|decode_files|BytesMut|decode_general|decode_raw|message_spans|parse_frame|AmiCodec|recycle'),
 ('typed view (Event::parse, Timestamp)', r'Event::parse|EventTime::parse_ami|Fields'),
 ('tracker routing (maps, dispatch)', r'Tracker::|hashbrown|IdMap|chan_id|Pipeline|foldhash'),
 ('state machine (Call::on_event, legs, apps)', r'calls::|callbacks::|Utf8Chunks|from_utf8_lossy|decode_var'),
 ('header lookups (Message::get)', r'Message::get|event_name|memcmp'),
 ('allocation (malloc/free)', r'malloc|free|_int_|unlink_chunk|cfree|realloc'),
 ('replay loop, stats, hand-off', r'replay::|Counter|mpmc|mpsc|thread::scoped|memmove|memcpy|shared_v|bytes::'),
]
tot=collections.defaultdict(lambda: collections.defaultdict(float))
for line in sys.stdin:
    m=re.match(r'\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+(.*)$',line)
    if not m: continue
    n=int(m.group(2)); comm=m.group(3); sym=m.group(4)
    if comm.startswith('store-writer'):
        stage='store writer thread (SQLite)'
    else:
        stage='other'
        for name,rx in rules:
            if re.search(rx,sym): stage=name;break
    tot[comm][stage]+=n
comms=sorted(tot, key=lambda c:-sum(tot[c].values()))
stages=[r[0] for r in rules]+['other','store writer thread (SQLite)']
print('| stage | '+' | '.join(comms)+' |')
print('|---|'+'---:|'*len(comms))
for st in stages:
    vals=[tot[c].get(st,0) for c in comms]
    if sum(vals)==0: continue
    print('| %s | %s |'%(st,' | '.join(('%.0f'%(v/freq/events*1e9)) if v else '' for v in vals)))
print('| **thread total** | %s |'%(' | '.join('**%.0f**'%(sum(tot[c].values())/freq/events*1e9) for c in comms)))
