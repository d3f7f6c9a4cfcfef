package query

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledger-billing/ledger/services/wire"
)

// Paging (AIP-158; DESIGN.md section 13): the documents (GetInvoice,
// GetUsageMonth) are cut into pages of lines, the lists (ListInvoices,
// ListAdjustments, ListExceptions) into pages of entries. Every page is cut
// from the whole document as the projection has it, so a document's total
// and every field but its lines are the whole document's on every page.
//
// A page token says where the next page starts, and binds it to what the
// first page was cut from:
//   - the request: a hash of its fields other than page_size, page_token
//     and min_position, so a token replayed against another BAN, month,
//     view, filter or form (include_lineage) is refused rather than
//     answered with a page of another document;
//   - the document: an issued one is frozen, and the token carries the
//     position that froze it; a draft (or a list, which may name drafts)
//     is what the projection holds now, and the projection keeps no past
//     states, so the token carries a digest of the whole answer at the
//     first page. A later page is cut only if the answer now is the very
//     same, which makes it the answer at the first page's position; else
//     the walk fails with FAILED_PRECONDITION and starts again. A digest,
//     rather than a position, lets a walk over a draft survive events of
//     other organizations, which move the position without changing it.
//
// Tokens are opaque (base64url) and carry a checksum, which catches a
// token cut or mangled in transit; they are not signed: a forged token can
// only ask for another page of a document its caller may read anyway, since
// access is decided on every call.

// Page token format, version 1: the version, the request hash, the offset
// and the position as uvarints, then 1 (frozen) or 0 and the digest, and
// last a checksum of all that. A token holds no state of the server, so
// any replica answers it alike.
const (
	tokenVersion   = 1
	requestHashLen = 8
	checksumLen    = 4
	digestLen      = 16
	// tokenLenMax bounds what a token may be before it is decoded: a
	// request may carry megabytes in page_token.
	tokenLenMax = 128
)

// digest identifies the content of a whole answer: see answerDigest.
type digest [digestLen]byte

// pageToken is a decoded page_token.
type pageToken struct {
	request [requestHashLen]byte
	// offset is the index of the page's first line or entry.
	offset uint64
	// position is that of the first page's document (for a draft, the
	// projection's position then; for an issued document, its close).
	position uint64
	// frozen says the first page was cut from a frozen document, which
	// never changes; else content is the digest of the whole answer.
	frozen  bool
	content digest
}

func (t *pageToken) encode() string {
	body := make([]byte, 0, 64)
	body = append(body, tokenVersion)
	body = append(body, t.request[:]...)
	body = binary.AppendUvarint(body, t.offset)
	body = binary.AppendUvarint(body, t.position)
	if t.frozen {
		body = append(body, 1)
	} else {
		body = append(body, 0)
		body = append(body, t.content[:]...)
	}
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(append(body, sum[:checksumLen]...))
}

// decodeToken reads a page_token; the error says what is wrong with it, for
// the status message (the rule names the field).
func decodeToken(s string) (*pageToken, error) {
	if len(s) > tokenLenMax {
		return nil, &tokenError{"longer than any token the service gives"}
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 1+requestHashLen+checksumLen {
		return nil, &tokenError{"not a token the service gave"}
	}
	body, sum := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:checksumLen]) || body[0] != tokenVersion {
		return nil, &tokenError{"not a token the service gave (damaged, or of another version)"}
	}
	t := &pageToken{}
	rest := body[1:]
	copy(t.request[:], rest)
	rest = rest[requestHashLen:]
	var n int
	if t.offset, n = binary.Uvarint(rest); n <= 0 {
		return nil, &tokenError{"not a token the service gave"}
	}
	rest = rest[n:]
	if t.position, n = binary.Uvarint(rest); n <= 0 {
		return nil, &tokenError{"not a token the service gave"}
	}
	rest = rest[n:]
	switch {
	case len(rest) == 1 && rest[0] == 1:
		t.frozen = true
	case len(rest) == 1+digestLen && rest[0] == 0:
		copy(t.content[:], rest[1:])
	default:
		return nil, &tokenError{"not a token the service gave"}
	}
	// One text per token: the decoders above forgive what the service
	// never writes (line breaks in base64, varints longer than need be).
	if t.encode() != s {
		return nil, &tokenError{"not a token the service gave"}
	}
	return t, nil
}

// pagedRequest is a request of a paged call.
type pagedRequest interface {
	request
	GetPageSize() int32
	GetPageToken() string
}

// pager is a paged request's page: its size, and where it starts.
type pager struct {
	size    int
	request [requestHashLen]byte
	token   *pageToken // nil for the first page
}

// newPager reads a request's page_size and page_token. Its errors are
// argument errors, answered before any wait.
func newPager(req pagedRequest) (*pager, error) {
	pg := &pager{size: wire.PageSizeDefault, request: requestHash(req)}
	switch size := req.GetPageSize(); {
	case size < 0:
		return nil, ErrInvalidPageSize
	case size > wire.PageSizeMax:
		// AIP-158: a size above the maximum is coerced, not refused.
		pg.size = wire.PageSizeMax
	case size > 0:
		pg.size = int(size)
	}
	if req.GetPageToken() == "" {
		return pg, nil
	}
	t, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	if t.request != pg.request {
		return nil, &tokenError{"it was given for another request (another " + identityFields(req) + ")"}
	}
	pg.token = t
	return pg, nil
}

// requestHash identifies a request for its page tokens: its type and every
// field but those a client may change between pages.
func requestHash(req pagedRequest) [requestHashLen]byte {
	m := proto.Clone(req).ProtoReflect()
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"page_size", "page_token", "min_position"} {
		if fd := fields.ByName(name); fd != nil {
			m.Clear(fd)
		}
	}
	// Deterministic, and the requests have scalar fields only, so equal
	// requests give equal bytes on every replica.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		// A request that arrived decoded always encodes again.
		panic(fmt.Sprintf("query: encoding a %s: %v", m.Descriptor().FullName(), err))
	}
	h := sha256.New()
	h.Write([]byte(m.Descriptor().FullName()))
	h.Write([]byte{0})
	h.Write(b)
	var out [requestHashLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// identityFields names the fields a token is bound to, for the message of
// a token replayed against another request.
func identityFields(req pagedRequest) string {
	var names []string
	fields := req.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		switch name := fields.Get(i).Name(); name {
		case "page_size", "page_token", "min_position":
		default:
			names = append(names, string(name))
		}
	}
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " or "
		default:
			s += ", "
		}
		s += n
	}
	return s
}

// cut is a page of n lines or entries: [from, to), the token of the next
// page if any, and the position of the first page's document.
type cut struct {
	from, to int
	next     string
	position uint64
}

// cut places the page in an answer of n lines or entries. position is the
// answer's document position now (a draft's is the projection's); frozen
// says it is an issued document that never changes; content, called only
// for an answer that is not frozen and only when a token is read or made,
// returns the digest of the whole answer. A later page of an answer that
// is no longer what the first page was cut from is ErrDraftChanged.
func (pg *pager) cut(n int, position uint64, frozen bool, content func() digest) (cut, error) {
	c := cut{position: position}
	var d digest
	haveDigest := false
	if t := pg.token; t != nil {
		switch {
		case frozen && t.frozen && t.position == position:
		case !frozen && !t.frozen:
			d, haveDigest = content(), true
			if d != t.content {
				return cut{}, &changedError{first: t.position, now: position}
			}
		default:
			// A draft issued since its first page (or, which no
			// service gives, the reverse).
			return cut{}, &changedError{first: t.position, now: position}
		}
		if t.offset > uint64(n) {
			return cut{}, &tokenError{"it points past the end of the answer"}
		}
		c.from, c.position = int(t.offset), t.position
	}
	c.to = c.from + min(pg.size, n-c.from)
	if c.to == n {
		return c, nil
	}
	next := pageToken{request: pg.request, offset: uint64(c.to), position: c.position, frozen: frozen}
	if !frozen {
		if !haveDigest {
			d = content()
		}
		next.content = d
	}
	c.next = next.encode()
	return c, nil
}

// changedError is a page token of a draft that has changed since its
// first page (ErrDraftChanged).
type changedError struct {
	first, now uint64
}

func (e *changedError) Error() string {
	return fmt.Sprintf("%v: first page at position %d, now at %d", ErrDraftChanged, e.first, e.now)
}
func (e *changedError) Unwrap() error { return ErrDraftChanged }

// answerDigest is the digest of a whole answer: its lines or entries, then
// any other parts, each encoded deterministically. The parts are what a
// client would see change (the lines or entries, the total, the status),
// never the position, which moves with every event of any organization.
func answerDigest[M proto.Message](list []M, more ...proto.Message) digest {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	var buf []byte
	add := func(m proto.Message) {
		var err error
		buf, err = opts.MarshalAppend(buf[:0], m)
		if err != nil {
			panic(fmt.Sprintf("query: encoding an answer: %v", err)) // the converters' own messages always encode
		}
		// Length-prefixed, so that parts cannot run into each other.
		h.Write(binary.AppendUvarint(nil, uint64(len(buf))))
		h.Write(buf)
	}
	for _, m := range list {
		add(m)
	}
	for _, m := range more {
		add(m)
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// withoutField returns a shallow copy of msg without one field: the page's
// own message, sharing every other field (sub-messages included) with the
// whole document's, which must therefore never be modified, as the frozen
// cache's messages must not be.
func withoutField[M proto.Message](msg M, name protoreflect.Name) M {
	src := msg.ProtoReflect()
	out := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != name {
			out.Set(fd, v)
		}
		return true
	})
	return out.Interface().(M)
}

// tokenError is a page_token refused (ErrInvalidPageToken), and why.
type tokenError struct {
	why string
}

func (e *tokenError) Error() string { return ErrInvalidPageToken.Error() + ": " + e.why }
func (e *tokenError) Unwrap() error { return ErrInvalidPageToken }
