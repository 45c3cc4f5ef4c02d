/* The element scanner: see scan.h. */
#include "daemon/users/scan.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int scan_utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	int n;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	for (int k = 1; k < n; k++) {
		if ((size_t)k >= avail)
			return -1;
		unsigned char d = p[k];
		if (k == 1) {
			if (d < lo || d > hi)
				return 0;
		} else if (d < 0x80 || d > 0xBF)
			return 0;
	}
	return n;
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

enum scan_result scan_element(struct scan *s, const char *buf, size_t len, int eof)
{
	const unsigned char *b = (const unsigned char *)buf;
	char *out = s->out;
	size_t i = 0, o = 0, start;
	unsigned depth = 0;
	uint64_t objbits = 0; /* bit d-1 set: level d is an object */
	unsigned max_depth = s->max_depth > 64 ? 64 : s->max_depth;
	int in_key = 0;
	unsigned char c;

	if (len > s->out_cap) {
		len = s->out_cap;
		eof = 0;
	}
	s->newlines = 0;
	s->last_nl = 0;
	s->expected = NULL;

#define ERR(msg) do { s->expected = (msg); s->end = i; return SCAN_ERROR; } while (0)
#define SKIP_WS() do { \
		for (;;) { \
			if (i >= len) goto more; \
			c = b[i]; \
			if (c == ' ' || c == '\t' || c == '\r') { i++; continue; } \
			if (c == '\n') { s->newlines++; i++; s->last_nl = i; continue; } \
			break; \
		} \
	} while (0)

value:
	SKIP_WS();
	c = b[i];
	switch (c) {
	case '{':
	case '[': {
		unsigned char open = c;
		if (depth >= max_depth)
			ERR("no deeper nesting (the nesting limit is reached)");
		if (c == '{')
			objbits |= (uint64_t)1 << depth;
		else
			objbits &= ~((uint64_t)1 << depth);
		depth++;
		out[o++] = (char)c;
		i++;
		SKIP_WS();
		if (open == '{') {
			if (b[i] == '}') {
				out[o++] = '}';
				i++;
				depth--;
				goto after;
			}
			goto key;
		}
		if (b[i] == ']') {
			out[o++] = ']';
			i++;
			depth--;
			goto after;
		}
		goto value;
	}
	case '"':
		goto string;
	case 't':
	case 'f':
	case 'n': {
		const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
		size_t wl = strlen(w);
		for (size_t k = 1; k < wl; k++) {
			if (i + k >= len)
				goto more;
			if (b[i + k] != (unsigned char)w[k]) {
				i += k;
				ERR("true, false or null");
			}
		}
		memcpy(out + o, w, wl);
		o += wl;
		i += wl;
		goto after;
	}
	default:
		if (c == '-' || is_digit(c))
			goto number;
		ERR("a value (object, array, string, number, true, false or null)");
	}

key:
	if (b[i] != '"')
		ERR("a property name in double quotes");
	in_key = 1;
	goto string;

after_key:
	SKIP_WS();
	if (b[i] != ':')
		ERR("':' after a property name");
	out[o++] = ':';
	i++;
	goto value;

after:
	if (depth == 0) {
		s->end = i;
		s->out_len = o;
		return SCAN_DONE;
	}
	SKIP_WS();
	c = b[i];
	if (objbits & ((uint64_t)1 << (depth - 1))) {
		if (c == ',') {
			out[o++] = ',';
			i++;
			SKIP_WS();
			goto key;
		}
		if (c == '}') {
			out[o++] = '}';
			i++;
			depth--;
			goto after;
		}
		ERR("',' or '}' after a property value");
	}
	if (c == ',') {
		out[o++] = ',';
		i++;
		goto value;
	}
	if (c == ']') {
		out[o++] = ']';
		i++;
		depth--;
		goto after;
	}
	ERR("',' or ']' after an array element");

string:
	start = i;
	i++;
	for (;;) {
#if defined(__SSE2__)
		{
			const __m128i q = _mm_set1_epi8('"');
			const __m128i bs = _mm_set1_epi8('\\');
			const __m128i sp = _mm_set1_epi8(0x20);
			while (i + 16 <= len) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
				__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
				                         _mm_cmplt_epi8(v, sp));
				int mask = _mm_movemask_epi8(m);
				if (mask) {
					i += (size_t)__builtin_ctz((unsigned)mask);
					break;
				}
				i += 16;
			}
		}
#endif
		while (i < len && b[i] >= 0x20 && b[i] < 0x80 && b[i] != '"' && b[i] != '\\')
			i++;
		if (i >= len)
			goto more;
		c = b[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= len)
				goto more;
			switch (b[i + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				i += 2;
				continue;
			case 'u':
				for (size_t k = 2; k < 6; k++) {
					if (i + k >= len)
						goto more;
					if (!is_hex(b[i + k])) {
						i += k;
						ERR("four hex digits after \\u");
					}
				}
				i += 6;
				continue;
			default:
				i++;
				ERR("an escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)");
			}
		}
		if (c < 0x20)
			ERR("no control character inside a string (escape it)");
		/* c >= 0x80 */
		{
			int n = scan_utf8_seq(b + i, len - i);
			if (n < 0)
				goto more;
			if (n == 0)
				ERR("valid UTF-8");
			i += (size_t)n;
		}
	}
	i++;
	memcpy(out + o, b + start, i - start);
	o += i - start;
	if (in_key) {
		in_key = 0;
		goto after_key;
	}
	goto after;

number:
	start = i;
	if (b[i] == '-') {
		i++;
		if (i >= len)
			goto more;
	}
	if (b[i] == '0')
		i++;
	else if (is_digit(b[i])) {
		while (i < len && is_digit(b[i]))
			i++;
	} else
		ERR("a digit");
	if (i >= len)
		goto number_end;
	if (b[i] == '.') {
		i++;
		if (i >= len)
			goto more;
		if (!is_digit(b[i]))
			ERR("a digit after '.'");
		while (i < len && is_digit(b[i]))
			i++;
		if (i >= len)
			goto number_end;
	}
	if (b[i] == 'e' || b[i] == 'E') {
		i++;
		if (i >= len)
			goto more;
		if (b[i] == '+' || b[i] == '-') {
			i++;
			if (i >= len)
				goto more;
		}
		if (!is_digit(b[i]))
			ERR("a digit in the exponent");
		while (i < len && is_digit(b[i]))
			i++;
	}
number_end:
	/* A number cut by the end of the buffer may go on: read more first. */
	if (i >= len && !eof)
		goto more;
	memcpy(out + o, b + start, i - start);
	o += i - start;
	goto after;

more:
	if (eof) {
		i = len;
		ERR("more: the file ends inside a user");
	}
	s->end = len;
	return SCAN_MORE;
#undef ERR
#undef SKIP_WS
}
