package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The SDK decodes a ListObjectsV2 page with encoding/xml, one token and a
// few allocations per element, which made it about half of kneepipe's CPU
// time in a no-op run (the listing is all such a run does). listDecoder
// replaces that step for successful responses with a scanner over the
// body that reads the same fields the same way; error responses still go
// to the SDK's own decoder. Tests hold the two to the same results.

// fastListDecoding is an s3 API option that installs listDecoder on a
// ListObjectsV2 call.
func fastListDecoding(stack *middleware.Stack) error {
	const id = "OperationDeserializer"
	sdk, ok := stack.Deserialize.Get(id)
	if !ok {
		return fmt.Errorf("list decoder: the SDK has no %s step to replace", id)
	}
	_, err := stack.Deserialize.Swap(id, listDecoder{sdk: sdk})
	return err
}

type listDecoder struct {
	sdk middleware.DeserializeMiddleware
}

func (listDecoder) ID() string { return "OperationDeserializer" }

func (d listDecoder) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		// Transport failures and error responses: the SDK's decoder turns
		// them into its typed errors.
		return d.sdk.HandleDeserialize(ctx, in, replay{out, md, err})
	}
	body, err := readBody(resp)
	resp.Body.Close()
	if err != nil {
		return out, md, err
	}
	result, err := decodeListXML(body)
	if err != nil {
		return out, md, &smithy.DeserializationError{Err: fmt.Errorf("decode ListObjectsV2 response: %w", err), Snapshot: snapshot(body)}
	}
	if v := resp.Header.Values("X-Amz-Request-Charged"); len(v) > 0 {
		result.RequestCharged = types.RequestCharged(strings.TrimSpace(v[0]))
	}
	out.Result = result
	return out, md, nil
}

// readBody reads a response body into a buffer sized from its announced
// length (the body may be shorter: the SDK's check for S3's "200 with an
// error" may have consumed a body of whitespace).
func readBody(resp *smithyhttp.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= 64<<20 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// replay hands an already received response to the SDK's decoder.
type replay struct {
	out middleware.DeserializeOutput
	md  middleware.Metadata
	err error
}

func (r replay) HandleDeserialize(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return r.out, r.md, r.err
}

func snapshot(body []byte) []byte {
	return body[:min(len(body), 1024)]
}

// decodeListXML reads a ListBucketResult document as the SDK does: element
// names match case-insensitively after any namespace prefix, unknown
// elements are skipped, a value is one run of character data (or none),
// and the document ends where the root element does. An empty body is an
// empty result.
func decodeListXML(body []byte) (*s3.ListObjectsV2Output, error) {
	sc := &xmlScanner{b: body}
	out := &s3.ListObjectsV2Output{}
	var times lastTime
	root, err := sc.root()
	if err != nil || root == nil {
		return out, err
	}
	err = sc.children(root, func(name []byte) error {
		switch local := localName(name); {
		case is(local, "Contents"):
			obj, err := sc.object(name, &times)
			out.Contents = append(out.Contents, obj)
			return err
		case is(local, "CommonPrefixes"):
			var cp types.CommonPrefix
			err := sc.children(name, func(child []byte) error {
				if is(localName(child), "Prefix") {
					return sc.stringValue(child, &cp.Prefix)
				}
				return sc.skip(child)
			})
			out.CommonPrefixes = append(out.CommonPrefixes, cp)
			return err
		case is(local, "ContinuationToken"):
			return sc.stringValue(name, &out.ContinuationToken)
		case is(local, "Delimiter"):
			return sc.stringValue(name, &out.Delimiter)
		case is(local, "EncodingType"):
			v, err := sc.value(name)
			out.EncodingType = types.EncodingType(v)
			return err
		case is(local, "IsTruncated"):
			v, err := sc.value(name)
			if err != nil {
				return err
			}
			b, err := strconv.ParseBool(string(v))
			if err != nil {
				return fmt.Errorf("IsTruncated %q: %w", v, err)
			}
			out.IsTruncated = aws.Bool(b)
			return nil
		case is(local, "KeyCount"):
			return sc.int32Value(name, &out.KeyCount)
		case is(local, "MaxKeys"):
			return sc.int32Value(name, &out.MaxKeys)
		case is(local, "Name"):
			return sc.stringValue(name, &out.Name)
		case is(local, "NextContinuationToken"):
			return sc.stringValue(name, &out.NextContinuationToken)
		case is(local, "Prefix"):
			return sc.stringValue(name, &out.Prefix)
		case is(local, "StartAfter"):
			return sc.stringValue(name, &out.StartAfter)
		}
		return sc.skip(name)
	})
	return out, err
}

// lastTime remembers the last LastModified parsed: objects written
// together share it, and parsing is a third of reading an object.
type lastTime struct {
	text string
	t    time.Time
}

func (lt *lastTime) parse(v []byte) (time.Time, error) {
	if lt.text != "" && string(v) == lt.text {
		return lt.t, nil
	}
	t, err := smithytime.ParseDateTime(string(v))
	if err == nil {
		lt.text, lt.t = string(v), t
	}
	return t, err
}

// object reads one <Contents> element: the fields a listing uses.
func (sc *xmlScanner) object(name []byte, times *lastTime) (types.Object, error) {
	var o types.Object
	err := sc.children(name, func(child []byte) error {
		switch local := localName(child); {
		case is(local, "Key"):
			return sc.stringValue(child, &o.Key)
		case is(local, "ETag"):
			return sc.stringValue(child, &o.ETag)
		case is(local, "Size"):
			v, err := sc.value(child)
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("Size: %w", err)
			}
			o.Size = sc.ints.ptr(n)
			return nil
		case is(local, "LastModified"):
			v, err := sc.value(child)
			if err != nil {
				return err
			}
			t, err := times.parse(v)
			if err != nil {
				return err
			}
			o.LastModified = sc.times.ptr(t)
			return nil
		case is(local, "StorageClass"):
			v, err := sc.value(child)
			o.StorageClass = types.ObjectStorageClass(sc.text(v))
			return err
		}
		return sc.skip(child)
	})
	return o, err
}

// xmlScanner reads XML tokens from a byte slice: the subset of
// encoding/xml's tokenizer that a ListBucketResult needs, with the same
// text rules (entities, CR/LF normalisation, CDATA).
type xmlScanner struct {
	b   []byte
	pos int
	// arena holds the bytes of the strings handed out (see text).
	arena strings.Builder
	// Field values are allocated from these.
	strs  slab[string]
	ints  slab[int64]
	times slab[time.Time]
	// selfClosed is the name of a just-read <x/>, whose end comes next.
	selfClosed []byte
}

type xmlKind uint8

const (
	xmlEOF   xmlKind = iota
	xmlStart         // name
	xmlEnd           // name
	xmlText          // text (character data or a CDATA section)
	xmlOther         // comment, processing instruction or directive
)

var errXMLEOF = errors.New("unexpected end of document")

// root skips to the first start tag and returns its name (nil if the
// document has none).
func (sc *xmlScanner) root() ([]byte, error) {
	for {
		kind, name, _, err := sc.next()
		if err != nil || kind == xmlEOF {
			return nil, err
		}
		if kind == xmlStart {
			return name, nil
		}
	}
}

// children calls fn with the name of each child element of the element
// just opened; fn must consume the child through its end tag.
func (sc *xmlScanner) children(parent []byte, fn func(name []byte) error) error {
	for {
		kind, name, _, err := sc.next()
		switch {
		case err != nil:
			return err
		case kind == xmlEOF:
			return errXMLEOF
		case kind == xmlEnd:
			if !bytes.Equal(name, parent) {
				return fmt.Errorf("element <%s> closed by </%s>", parent, name)
			}
			return nil
		case kind == xmlStart:
			if err := fn(name); err != nil {
				return err
			}
		}
	}
}

// skip consumes the element just opened.
func (sc *xmlScanner) skip(name []byte) error {
	return sc.children(name, sc.skip)
}

// value reads the content of the element just opened: one run of
// character data, or nothing, then its end tag.
func (sc *xmlScanner) value(name []byte) ([]byte, error) {
	kind, got, text, err := sc.next()
	if err != nil {
		return nil, err
	}
	if kind == xmlEnd && bytes.Equal(got, name) {
		return []byte{}, nil
	}
	if kind != xmlText {
		return nil, fmt.Errorf("expected a value in <%s>", name)
	}
	kind, got, _, err = sc.next()
	if err != nil {
		return nil, err
	}
	if kind != xmlEnd || !bytes.Equal(got, name) {
		return nil, fmt.Errorf("expected </%s> after its value", name)
	}
	return text, nil
}

// text returns the value just read as a string. Strings are cut from one
// growing buffer: a page's values cost a few allocations, not one each.
func (sc *xmlScanner) text(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if sc.arena.Cap() == 0 {
		sc.arena.Grow(len(sc.b) / 2)
	}
	start := sc.arena.Len()
	sc.arena.Write(v)
	return sc.arena.String()[start:]
}

func (sc *xmlScanner) stringValue(name []byte, dst **string) error {
	v, err := sc.value(name)
	if err == nil {
		*dst = sc.strs.ptr(sc.text(v))
	}
	return err
}

// slab hands out pointers into chunks of values, so that a page of objects
// costs a few allocations rather than one per field.
type slab[T any] struct{ chunk []T }

func (s *slab[T]) ptr(v T) *T {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, max(256, 2*cap(s.chunk)))
	}
	s.chunk = append(s.chunk, v)
	return &s.chunk[len(s.chunk)-1]
}

func (sc *xmlScanner) int32Value(name []byte, dst **int32) error {
	v, err := sc.value(name)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*dst = aws.Int32(int32(n))
	return nil
}

// next returns the next token: its kind, the tag name of a start or end
// tag, and the text of character data.
func (sc *xmlScanner) next() (kind xmlKind, name, text []byte, err error) {
	if sc.selfClosed != nil {
		name, sc.selfClosed = sc.selfClosed, nil
		return xmlEnd, name, nil, nil
	}
	b, pos := sc.b, sc.pos
	if pos >= len(b) {
		return xmlEOF, nil, nil, nil
	}
	if b[pos] != '<' {
		end := bytes.IndexByte(b[pos:], '<')
		if end < 0 {
			end = len(b) - pos
		}
		sc.pos = pos + end
		text, err := unescape(b[pos : pos+end])
		return xmlText, nil, text, err
	}
	rest := b[pos:]
	var second byte
	if len(rest) > 1 {
		second = rest[1]
	}
	switch {
	case second == '!' && bytes.HasPrefix(rest, []byte("<!--")):
		return xmlOther, nil, nil, sc.skipPast(4, "-->")
	case second == '!' && bytes.HasPrefix(rest, []byte("<![CDATA[")):
		end := bytes.Index(rest[9:], []byte("]]>"))
		if end < 0 {
			return 0, nil, nil, errXMLEOF
		}
		sc.pos = pos + 9 + end + 3
		text = normalizeNewlines(rest[9 : 9+end])
		return xmlText, nil, text, nil
	case second == '?':
		return xmlOther, nil, nil, sc.skipPast(2, "?>")
	case second == '!':
		return xmlOther, nil, nil, sc.skipDirective()
	case second == '/':
		i := 2
		for i < len(rest) && !isSpace(rest[i]) && rest[i] != '>' {
			i++
		}
		name = rest[2:i]
		for i < len(rest) && isSpace(rest[i]) {
			i++
		}
		if i >= len(rest) {
			return 0, nil, nil, errXMLEOF
		}
		if rest[i] != '>' || !validName(name) {
			return 0, nil, nil, fmt.Errorf("malformed end tag at byte %d", pos)
		}
		sc.pos = pos + i + 1
		return xmlEnd, name, nil, nil
	}
	// A start tag: its name, then attributes up to '>' or '/>'.
	i := 1
	for i < len(rest) && !isSpace(rest[i]) && rest[i] != '>' && rest[i] != '/' {
		i++
	}
	name = rest[1:i]
	if !validName(name) {
		return 0, nil, nil, fmt.Errorf("malformed start tag at byte %d", pos)
	}
	var quote byte
	for ; i < len(rest); i++ {
		c := rest[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '/' && i+1 < len(rest) && rest[i+1] == '>':
			sc.pos = pos + i + 2
			sc.selfClosed = name
			return xmlStart, name, nil, nil
		case c == '>':
			sc.pos = pos + i + 1
			return xmlStart, name, nil, nil
		}
	}
	return 0, nil, nil, errXMLEOF
}

// skipPast moves past the first terminator found from offset from.
func (sc *xmlScanner) skipPast(from int, terminator string) error {
	end := bytes.Index(sc.b[sc.pos+from:], []byte(terminator))
	if end < 0 {
		return errXMLEOF
	}
	sc.pos += from + end + len(terminator)
	return nil
}

// skipDirective moves past <!DOCTYPE ...> and the like as encoding/xml
// reads them: the byte after "<!" is taken as it is, then quoted '<' and
// '>' do not nest and comments are skipped.
func (sc *xmlScanner) skipDirective() error {
	b := sc.b
	var quote byte
	depth := 0
	for i := sc.pos + 3; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '>' && depth == 0:
			sc.pos = i + 1
			return nil
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			depth--
		case c == '<':
			if bytes.HasPrefix(b[i:], []byte("<!--")) {
				end := bytes.Index(b[i+4:], []byte("-->"))
				if end < 0 {
					return errXMLEOF
				}
				i += 4 + end + 2
				continue
			}
			depth++
		}
	}
	return errXMLEOF
}

// localName is a tag name without its namespace prefix.
func localName(name []byte) []byte {
	for i, c := range name {
		if c == ':' {
			if i > 0 && i < len(name)-1 {
				return name[i+1:]
			}
			break
		}
	}
	return name
}

// is matches an element's local name as the SDK does (strings.EqualFold).
func is(local []byte, name string) bool {
	return bytes.EqualFold(local, []byte(name))
}

// validName rejects what encoding/xml cannot read as a tag name: an empty
// name or one with more than one ':'.
func validName(name []byte) bool {
	colons := 0
	for _, c := range name {
		if c == ':' {
			colons++
		}
	}
	return len(name) > 0 && colons <= 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// unescape decodes character data: the five named entities and numeric
// character references, with raw CR LF and lone CR read as LF.
func unescape(raw []byte) ([]byte, error) {
	if bytes.IndexByte(raw, '&') < 0 {
		return normalizeNewlines(raw), nil
	}
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		amp := bytes.IndexByte(raw, '&')
		if amp < 0 {
			out = append(out, normalizeNewlines(raw)...)
			break
		}
		out = append(out, normalizeNewlines(raw[:amp])...)
		semi := bytes.IndexByte(raw[amp:], ';')
		if semi < 0 {
			return nil, fmt.Errorf("unterminated entity in %q", raw)
		}
		ref := string(raw[amp+1 : amp+semi])
		raw = raw[amp+semi+1:]
		switch ref {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			r, ok := charRef(ref)
			if !ok {
				return nil, fmt.Errorf("invalid entity &%s;", ref)
			}
			out = utf8.AppendRune(out, r)
		}
	}
	return out, nil
}

// charRef reads "#123" or "#x7B" (lower-case x only, as encoding/xml).
// Like encoding/xml it takes any number up to the largest rune; one that
// is not a valid rune (a surrogate) reads as U+FFFD.
func charRef(ref string) (rune, bool) {
	digits, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return 0, false
	}
	base := 10
	if hex, ok := strings.CutPrefix(digits, "x"); ok {
		digits, base = hex, 16
	}
	for _, c := range digits {
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil || n > utf8.MaxRune {
		return 0, false
	}
	return rune(n), true
}

// normalizeNewlines turns CR LF and lone CR into LF, as XML parsers must.
func normalizeNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' {
			out = append(out, '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			continue
		}
		out = append(out, b[i])
	}
	return out
}
