#!/usr/bin/env python3
"""Makes an x86-64 ELF program's requirements on given symbol versions optional.

Usage: relax_symbol_versions.py BINARY VERSION... (e.g. GLIBC_2.38 GLIBCXX_3.4.32)

For every version named, the version requirement (.gnu.version_r) is removed, so
the dynamic linker no longer refuses to start the program when the system
library lacks that version, and every symbol that asked for it becomes an
unversioned reference (.gnu.version index 1), which a preloaded library can then
satisfy. Prints the names of those symbols, one per line, so the caller can check
that its replacement library defines each. The file is modified in place; nothing
else in it changes size or moves.
"""
import struct
import sys

SHT_DYNSYM = 11
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_GNU_VERSYM = 0x6FFFFFFF
VER_NDX_GLOBAL = 1


def c_string(data, offset):
    return data[offset:data.index(b"\0", offset)].decode()


def main(path, versions):
    with open(path, "rb") as f:
        elf = bytearray(f.read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        sys.exit(f"{path}: not a little-endian 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = {}
    for i in range(shnum):
        (_, sh_type, _, _, offset, size, link, info, _, entsize) = struct.unpack_from(
            "<IIQQQQIIQQ", elf, shoff + i * shentsize)
        sections.setdefault(sh_type, (offset, size, link, info, entsize))
    for need in (SHT_DYNSYM, SHT_GNU_VERSYM, SHT_GNU_VERNEED):
        if need not in sections:
            sys.exit(f"{path}: no section of type {need:#x}; nothing to relax")

    def section_offset(index):  # where section `index` (a string table here) starts
        return struct.unpack_from("<Q", elf, shoff + index * shentsize + 0x18)[0]

    # Version requirements: unlink the named ones from their library's list (the
    # dynamic linker then neither checks nor mentions them); remember their indices.
    vn_off, _, vn_link, vn_count, _ = sections[SHT_GNU_VERNEED]
    names = section_offset(vn_link)
    relaxed, found = set(), set()
    entry = vn_off
    for _ in range(vn_count):
        _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", elf, entry)
        kept, a = [], entry + aux
        for _ in range(cnt):
            _, _, other, name, anext = struct.unpack_from("<IHHII", elf, a)
            version = c_string(elf, names + name)
            if version in versions:
                relaxed.add(other)
                found.add(version)
            else:
                kept.append(a)
            a += anext
        if not kept:
            sys.exit(f"{path}: every version of one library would go; not supported")
        struct.pack_into("<H", elf, entry + 2, len(kept))
        struct.pack_into("<I", elf, entry + 8, kept[0] - entry)
        for this, following in zip(kept, kept[1:] + [None]):
            struct.pack_into("<I", elf, this + 12, 0 if following is None else following - this)
        entry += nxt
    missing = set(versions) - found
    if missing:
        sys.exit(f"{path}: does not require {', '.join(sorted(missing))}")

    # Symbols that asked for those versions become unversioned references.
    sym_off, sym_size, sym_link, _, sym_entsize = sections[SHT_DYNSYM]
    symnames = section_offset(sym_link)
    versym_off = sections[SHT_GNU_VERSYM][0]
    for i in range(sym_size // sym_entsize):
        index, = struct.unpack_from("<H", elf, versym_off + 2 * i)
        if index & 0x7FFF in relaxed:
            struct.pack_into("<H", elf, versym_off + 2 * i, VER_NDX_GLOBAL)
            name, = struct.unpack_from("<I", elf, sym_off + i * sym_entsize)
            print(c_string(elf, symnames + name))
    with open(path, "wb") as f:
        f.write(elf)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], set(sys.argv[2:]))
