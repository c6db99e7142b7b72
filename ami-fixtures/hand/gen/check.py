"""Checks every hand-written stream: CRLF only, one Timestamp per event, strictly increasing."""
import glob, os, re
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '*.ami'))):
    b = open(f,'rb').read()
    assert b.count(b'\n') == b.count(b'\r\n'), f
    blocks = b.split(b'\r\n\r\n')
    assert blocks[-1] == b'', f
    last = 0
    n = 0
    for blk in blocks[1:-1]:
        m = re.search(rb'^Timestamp: (\d+\.\d{6})\r$', blk, re.M)
        if blk.startswith(b'Event: FullyBooted'):
            assert not m; continue
        assert m, (f, blk[:80])
        t = float(m.group(1)); assert t > last, (f, t); last = t; n += 1
    try:
        b.decode('utf-8'); utf = True
    except UnicodeDecodeError:
        utf = False
    print(f.rsplit('/',1)[1], 'events', n, 'utf8' if utf else 'NON-UTF8', len(b))
