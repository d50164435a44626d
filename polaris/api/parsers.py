"""Request parsers: DRF's JSON parser, plus a clean 400 for JSON nested too deeply to parse."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json raises RecursionError (not ValueError) past its nesting limit; that is bad input.
            raise ParseError("JSON parse error - nested too deeply.") from None
