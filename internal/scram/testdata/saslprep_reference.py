#!/usr/bin/env python3
"""Writes SASLprep reference vectors computed with Python's stringprep module
and unicodedata.ucd_3_2_0, an implementation independent of this package.

    python3 testdata/saslprep_reference.py > /tmp/saslprep-vectors.txt
    SCRAM_SASLPREP_VECTORS=/tmp/saslprep-vectors.txt go test -run TestSASLprepReference .

Each line is "<input code points>\t<output code points or ERR>" in hex; "-" is
the empty string. The first 1,112,064 lines are every code point alone, the
rest random short strings mixing ASCII, mapped, prohibited, compatibility,
combining and right-to-left characters.
"""
import random
import stringprep
import sys
import unicodedata

ucd = unicodedata.ucd_3_2_0


def prohibited(c):
    return any(f(c) for f in (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3,
        stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6,
        stringprep.in_table_c7, stringprep.in_table_c8, stringprep.in_table_c9))


def saslprep(s):
    """RFC 4013 for stored strings; U+200B (in both B.1 and C.1.2) maps to space."""
    out = []
    for c in s:
        if stringprep.in_table_a1(c):
            return None
        if stringprep.in_table_c12(c):
            out.append(' ')
        elif not stringprep.in_table_b1(c):
            out.append(c)
    s = ucd.normalize('NFKC', ''.join(out))
    if any(stringprep.in_table_a1(c) or prohibited(c) for c in s):
        return None
    if any(stringprep.in_table_d1(c) for c in s):
        if any(stringprep.in_table_d2(c) for c in s):
            return None
        if not (stringprep.in_table_d1(s[0]) and stringprep.in_table_d1(s[-1])):
            return None
    return s


def enc(s):
    return ' '.join('%X' % ord(c) for c in s) if s else '-'


def emit(s):
    r = saslprep(s)
    sys.stdout.write('%s\t%s\n' % (enc(s), 'ERR' if r is None else enc(r)))


for cp in range(0x110000):
    if not 0xD800 <= cp <= 0xDFFF:
        emit(chr(cp))

pool = [chr(x) for x in range(0x20, 0x7F)]
pool += [chr(x) for x in (0xAD, 0xA0, 0x200B, 0x2000, 0x3000, 0x34F, 0xFEFF, 0x200C, 0x7, 0x0, 0x7F, 0x85,
                          0xE000, 0xFFFD, 0x340, 0x341, 0x300, 0x301, 0x308, 0x327, 0x3099, 0x309A, 0x5BC)]
pool += [chr(x) for x in range(0xC0, 0x180)]
pool += [chr(x) for x in (0xAA, 0xBA, 0xB2, 0xBD, 0xA8, 0xB4, 0x2168, 0x2126, 0x212B, 0xFB01, 0xFF21, 0xFF41,
                          0xFF76, 0xFF9E, 0x3042, 0x304B, 0x30AB, 0x30FC, 0x4E00, 0xAC00, 0x1100, 0x1161, 0x11A8)]
pool += [chr(x) for x in range(0x5D0, 0x5EB)] + [chr(x) for x in range(0x621, 0x63B)]
pool += [chr(x) for x in range(0x660, 0x66A)] + [chr(x) for x in (0x5BE, 0x5C0, 0x5F3, 0x61F, 0x200E, 0x200F, 0x202A)]
pool += [chr(x) for x in range(0x391, 0x3CF)] + [chr(x) for x in range(0x410, 0x450)]
random.seed(1)
for _ in range(300000):
    emit(''.join(random.choice(pool) for _ in range(random.randint(1, 6))))
