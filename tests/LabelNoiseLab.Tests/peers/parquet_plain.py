"""An independent reader of flat Parquet files, in Python's standard library and numpy only.

Debian 12 packages no Parquet engine for pandas (no pyarrow, no fastparquet), so the tests read
ledger.parquet with this instead: the footer's Thrift compact-protocol FileMetaData decoded by hand,
then every column chunk's pages. It reads what a flat table of required columns needs (the
physical types BOOLEAN, INT32, INT64, FLOAT, DOUBLE; PLAIN encoding; uncompressed or gzip; data
pages v1 and v2) and refuses anything else with one line naming what it met.

    parquet_plain.py FILE   prints one line per column: name:type:v1,v2,...  (integers as they
                            are, booleans as 0/1, floats as the integers of their IEEE bits, so a
                            comparison is exact and NaN compares too)
"""
import gzip
import struct
import sys

import numpy as np

PHYSICAL = {0: "BOOLEAN", 1: "INT32", 2: "INT64", 4: "FLOAT", 5: "DOUBLE"}
NUMPY = {1: "<i4", 2: "<i8", 4: "<f4", 5: "<f8"}
BITS = {4: "<i4", 5: "<i8"}  # float columns are printed as their bits


class Compact:
    """Thrift compact protocol: a struct is a dict of field id -> value (nested structs as dicts, lists as lists)."""

    def __init__(self, data, pos):
        self.data, self.pos = data, pos

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self):
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    def zigzag(self):
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind):
        if kind in (1, 2):  # booleans inside a struct carry their value in the type
            return kind == 1
        if kind == 3:
            return struct.unpack("b", bytes([self.byte()]))[0]
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.pos += 8
            return struct.unpack("<d", self.data[self.pos - 8:self.pos])[0]
        if kind == 8:
            n = self.varint()
            self.pos += n
            return bytes(self.data[self.pos - n:self.pos])
        if kind in (9, 10):
            head = self.byte()
            size, element = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            if element in (1, 2):
                return [self.byte() == 1 for _ in range(size)]
            return [self.value(element) for _ in range(size)]
        if kind == 11:
            size = self.varint()
            kinds = self.byte() if size else 0
            return {self.value(kinds >> 4): self.value(kinds & 0x0F) for _ in range(size)}
        if kind == 12:
            return self.struct()
        raise ValueError(f"Thrift compact type {kind} at byte {self.pos}")

    def struct(self):
        fields, last = {}, 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind)


def plain(data, physical, count):
    """count values of a PLAIN-encoded page body."""
    if physical == 0:  # bit-packed, least significant bit first
        return np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:count].astype(np.int64)
    values = np.frombuffer(data, NUMPY[physical], count)
    return values.view(BITS[physical]) if physical in BITS else values


def column(data, meta, physical):
    """Every value of one column chunk (ColumnMetaData meta), page by page."""
    codec, total, pos, parts = meta[4], meta[5], meta[9], []
    if codec not in (0, 2):
        raise ValueError(f"column {meta[3]}: codec {codec} (only uncompressed and gzip are read)")
    if meta.get(11) is not None:
        raise ValueError(f"column {meta[3]}: a dictionary page (only PLAIN is read)")
    read = 0
    while read < total:
        reader = Compact(data, pos)
        header = reader.struct()
        body = bytes(data[reader.pos:reader.pos + header[3]])
        pos = reader.pos + header[3]
        if header[1] == 0:  # DATA_PAGE
            page = header[5]
            count, encoding = page[1], page[2]
            if codec == 2:
                body = gzip.decompress(body)
        elif header[1] == 3:  # DATA_PAGE_V2
            page = header[8]
            count, encoding, levels = page[1], page[4], page[5] + page[6]
            if levels or page[2]:
                raise ValueError(f"column {meta[3]}: levels or nulls in a page (only required columns are read)")
            if codec == 2 and page.get(7, True):
                body = gzip.decompress(body)
        else:
            raise ValueError(f"column {meta[3]}: page type {header[1]}")
        if encoding != 0:
            raise ValueError(f"column {meta[3]}: encoding {encoding} (only PLAIN is read)")
        parts.append(plain(body, physical, count))
        read += count
    return np.concatenate(parts)


def read(path):
    """{column name: (physical type name, numpy array)} over every row group, in schema order."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        raise ValueError(f"{path}: not a Parquet file (no PAR1 magic)")
    length = struct.unpack("<i", data[-8:-4])[0]
    footer = Compact(data, len(data) - 8 - length).struct()
    schema = footer[2]
    leaves = [e for e in schema[1:] if not e.get(5)]
    for e in leaves:
        if e.get(3, 0) != 0:
            raise ValueError(f"{path}: column {e[4].decode()} is not required")
        if e[1] not in PHYSICAL:
            raise ValueError(f"{path}: column {e[4].decode()} has physical type {e[1]}")
    columns = {e[4].decode(): [] for e in leaves}
    for group in footer.get(4, []):
        for chunk, element in zip(group[1], leaves):
            meta = chunk[3]
            name = b".".join(meta[3]).decode()
            if name != element[4].decode() or meta[1] != element[1]:
                raise ValueError(f"{path}: column chunk {name} does not match the schema's {element[4].decode()}")
            columns[name].append(column(data, meta, meta[1]))
    return {e[4].decode(): (PHYSICAL[e[1]], np.concatenate(columns[e[4].decode()]) if columns[e[4].decode()] else np.zeros(0, np.int64))
            for e in leaves}, footer[3]


def main():
    table, rows = read(sys.argv[1])
    print(f"rows:{rows}")
    for name, (kind, values) in table.items():
        if len(values) != rows:
            raise ValueError(f"{sys.argv[1]}: column {name} has {len(values)} values, the footer says {rows} rows")
        print(f"{name}:{kind}:" + ",".join(str(int(v)) for v in values))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError) as e:
        print(f"parquet_plain.py: {e}", file=sys.stderr)
        sys.exit(2)
