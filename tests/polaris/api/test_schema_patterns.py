"""The non-blank pattern the schema states for a trimmed ``CharField``, read as a client's JSON Schema
validator reads it (ECMAScript's ``\\s``), accepts no string that DRF, trimming with Python's ``strip()``,
then refuses as blank: a fuzzer once sent ``"\\u001d"`` as schema-valid text."""

import re

from polaris.api.schema import NON_BLANK_PATTERN

# ECMAScript's WhiteSpace and LineTerminator: what ``\s`` means to a JSON Schema validator.
ECMA_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def test_every_single_character_the_schema_accepts_survives_the_trim():
    as_ecma = re.compile(NON_BLANK_PATTERN.replace("\\s", ECMA_SPACE))
    accepted_but_blank = [
        hex(code)
        for code in range(1, 0x10000)
        if not 0xD800 <= code <= 0xDFFF and as_ecma.match(chr(code)) and not chr(code).strip()
    ]
    assert accepted_but_blank == []
