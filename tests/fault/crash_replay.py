"""Undo what a power cut would have lost: the changes tests/fault/crash_shim.c
journaled that no fsync made durable.

Run it after the process that wrote the journal was killed (SIGKILL): the
page cache still holds every write; this walks the journal newest first and
undoes each change that no later barrier covered:
- a write (W) or size change (T) of a file whose inode saw no fsync or
  fdatasync (S) after it, and no sync (A);
- a create (C), rename (R) or unlink (U) in a directory whose inode saw no
  fsync (D) after it, and no sync.
Files are found by inode (a write before a rename is undone in the
renamed file). With ignore_barriers_from=OFFSET no barrier journaled at
or after that offset counts: every change since is undone, the negative
control (a disk that lies about fsync).

Usage: crash_replay.py JOURNAL ROOT [--ignore-barriers-from OFFSET]
Prints a one-line JSON summary: records read, changes undone by kind.
"""
import json
import os
import sys


def parse(journal_path):
    """The journal's records, oldest first: (offset, kind, fields, bytes)."""
    with open(journal_path, "rb") as f:
        data = f.read()
    out = []
    pos = 0
    while pos < len(data):
        start = pos
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # torn last record (below)
        fields = data[pos:nl].decode("utf-8", "surrogateescape").split("\t")
        pos = nl + 1
        kind = fields[0]
        raw = b""
        if kind == "W":
            n = int(fields[4])
            raw = data[pos:pos + n]
            pos += n
        elif kind == "T":
            n = int(fields[3])
            raw = data[pos:pos + n]
            pos += n
        if len(raw) != (int(fields[4]) if kind == "W" else int(fields[3]) if kind == "T" else 0):
            # killed while journaling: the shim journals before it acts,
            # so the change this record announces never happened
            break
        out.append((start, kind, fields[1:], raw))
    return out


class Inodes:
    """inode -> path under root, rebuilt after every change of names."""

    def __init__(self, root):
        self.root = root
        self.map = None

    def path(self, ino):
        if self.map is None:
            self.map = {}
            for d, _, files in os.walk(self.root):
                for name in files:
                    p = os.path.join(d, name)
                    try:
                        self.map[os.lstat(p).st_ino] = p
                    except FileNotFoundError:
                        pass
        return self.map.get(ino)

    def changed(self):
        self.map = None


def undo_write(path, old_size, off, old):
    with open(path, "r+b") as f:
        if old:
            f.seek(off)
            f.write(old)
        size = os.fstat(f.fileno()).st_size
        if size > old_size:
            f.truncate(old_size)


def undo_resize(path, old_size, cut):
    with open(path, "r+b") as f:
        f.truncate(old_size)
        if cut:
            f.seek(old_size - len(cut))
            f.write(cut)


def replay(journal_path, root, ignore_barriers_from=None):
    """Undo what no barrier covered. ignore_barriers_from: a journal offset
    from which barriers count for nothing (a disk that lies about fsync
    from then on: the negative control)."""
    records = parse(journal_path)
    synced_files, synced_dirs = set(), set()
    undone = {"W": 0, "T": 0, "C": 0, "R": 0, "U": 0}
    inodes = Inodes(root)
    for offset, kind, f, raw in reversed(records):
        ignore_barriers = ignore_barriers_from is not None and offset >= ignore_barriers_from
        if kind == "A":
            if not ignore_barriers:
                break  # everything older is durable
            continue
        if kind == "S":
            if not ignore_barriers:
                synced_files.add(int(f[0]))
            continue
        if kind == "D":
            if not ignore_barriers:
                synced_dirs.add(int(f[0]))
            continue
        if kind == "W":
            ino, old_size, off = int(f[0]), int(f[1]), int(f[2])
            if ino in synced_files:
                continue
            path = inodes.path(ino)
            if path:
                undo_write(path, old_size, off, raw)
                undone["W"] += 1
        elif kind == "T":
            ino, old_size = int(f[0]), int(f[1])
            if ino in synced_files:
                continue
            path = inodes.path(ino)
            if path:
                undo_resize(path, old_size, raw)
                undone["T"] += 1
        elif kind == "C":
            if int(f[0]) in synced_dirs:
                continue
            if os.path.lexists(f[1]):
                os.unlink(f[1])
                inodes.changed()
                undone["C"] += 1
        elif kind == "R":
            dir_old, dir_new, old, new, saved = int(f[0]), int(f[1]), f[2], f[3], f[4]
            if dir_old in synced_dirs and dir_new in synced_dirs:
                continue
            if os.path.lexists(new):
                os.rename(new, old)
            if saved != "-":
                os.link(saved, new)
            inodes.changed()
            undone["R"] += 1
        elif kind == "U":
            if int(f[0]) in synced_dirs:
                continue
            path, saved = f[1], f[2]
            if not os.path.lexists(path):
                os.link(saved, path)
                inodes.changed()
                undone["U"] += 1
    return {"records": len(records), "undone": undone}


if __name__ == "__main__":
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--ignore-barriers-from"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    result = replay(sys.argv[1], sys.argv[2],
                    ignore_barriers_from=int(sys.argv[4]) if len(sys.argv) == 5 else None)
    print(json.dumps(result))
