package ctl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Magic bytes that say what a file is, whatever its name.
var (
	gzipMagic    = []byte{0x1f, 0x8b}
	parquetMagic = []byte("PAR1")
)

// parquetBatchRows bounds the rows read from a Parquet file at a time:
// memory stays that of a batch (and of the library's pages), whatever the
// size of the file.
const parquetBatchRows = 256

// openFOCUS opens a FOCUS file: Parquet by its magic bytes, gzip-compressed
// CSV by its magic bytes or a .gz name, CSV otherwise. It returns the
// reader past the header and what to close when done.
func openFOCUS(path string) (*focusReader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, usage("import focus: %v", err)
	}
	fail := func(err error) (*focusReader, io.Closer, error) {
		f.Close()
		return nil, nil, err
	}
	head := make([]byte, 4)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("read %s: %w", path, err))
	}
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("read %s: %w", path, err))
	}
	switch {
	case bytes.Equal(head, parquetMagic):
		info, err := f.Stat()
		if err != nil {
			return fail(fmt.Errorf("read %s: %w", path, err))
		}
		r, err := newParquetReader(f, info.Size(), path)
		if err != nil {
			return fail(err)
		}
		return r, f, nil
	case bytes.HasPrefix(head, gzipMagic) || strings.HasSuffix(strings.ToLower(path), ".gz"):
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fail(&FileError{File: path, Problems: []RowProblem{{Line: 1, Reason: "not gzip-compressed CSV: " + err.Error()}}})
		}
		r, err := newFocusReader(zr, path)
		if err != nil {
			return fail(err)
		}
		return r, f, nil
	}
	r, err := newFocusReader(bufio.NewReader(f), path)
	if err != nil {
		return fail(err)
	}
	return r, f, nil
}

// csvSource reads the rows of a CSV file, possibly through gzip.
type csvSource struct {
	r    *csv.Reader
	last int // the line of the last row read
	// dead is set once the stream is damaged: nothing after can be read.
	dead bool
}

// newCSVSource reads the header.
func newCSVSource(r io.Reader, file string) (*csvSource, []string, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, &FileError{File: file, Problems: []RowProblem{{Line: 1, Reason: "the file is empty; want a FOCUS header line"}}}
	}
	if err != nil {
		return nil, nil, csvError(file, err)
	}
	// The header's cells are kept; the rows' are read into a reused
	// slice, as a row is converted before the next is read.
	cr.ReuseRecord = true
	return &csvSource{r: cr, last: 1}, header, nil
}

func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &FileError{File: file, Problems: []RowProblem{{Line: pe.StartLine, Reason: "not CSV: " + pe.Err.Error()}}}
	}
	if p := streamProblem(err, 1); p != nil {
		return &FileError{File: file, Problems: []RowProblem{*p}}
	}
	return fmt.Errorf("read %s: %w", file, err)
}

// streamProblem turns the errors of a damaged gzip stream into a problem
// at line, rather than an I/O error: the file is bad, not the disk.
func streamProblem(err error, line int) *RowProblem {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &RowProblem{Line: line, Reason: "the compressed file ends early: truncated"}
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return &RowProblem{Line: line, Reason: "the compressed file is damaged: " + err.Error()}
	}
	return nil
}

func (s *csvSource) next() (int, []string, *RowProblem, error) {
	if s.dead {
		return 0, nil, nil, io.EOF
	}
	cells, err := s.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if p := streamProblem(pe.Err, pe.StartLine); p != nil {
				s.dead = true
				return 0, nil, p, nil
			}
			return 0, nil, &RowProblem{Line: pe.StartLine, Reason: "not CSV: " + pe.Err.Error()}, nil
		}
		if p := streamProblem(err, s.last+1); p != nil {
			// Nothing after a damaged stream can be read: the problem is
			// the last thing the source says.
			s.dead = true
			return 0, nil, p, nil
		}
		return 0, nil, nil, err
	}
	line, _ := s.r.FieldPos(0)
	s.last = line
	return line, cells, nil, nil
}

// parquetSource reads the rows of a Parquet file a few at a time. Only
// top-level leaf columns are read: FOCUS columns are flat, and a nested
// one (Tags as a map) is ignored as any unknown column is.
type parquetSource struct {
	r      *parquet.Reader
	leaves []parquetLeaf // by column index
	rows   []parquet.Row
	n, at  int // rows in rows, and the next to return
	row    int // rows returned so far
	cells  []string
	done   bool
}

type parquetLeaf struct {
	name string
	cell int // the index of the cell, -1 when not read
	kind format.LogicalType
	has  bool // kind is set
}

// newParquetReader reads the schema of the Parquet file of size bytes in
// r, which path names.
func newParquetReader(r io.ReaderAt, size int64, path string) (*focusReader, error) {
	schemaProblem := func(reason string) error {
		return &FileError{File: path, Problems: []RowProblem{{InRow: true, Reason: reason}}}
	}
	pf, err := openParquet(r, size)
	if err != nil {
		return nil, schemaProblem("not a Parquet file: " + err.Error())
	}
	schema := pf.Schema()
	s := &parquetSource{r: parquet.NewReader(pf), rows: make([]parquet.Row, parquetBatchRows)}
	var header []string
	for _, path := range schema.Columns() {
		leaf := parquetLeaf{cell: -1}
		if len(path) == 1 {
			leaf.cell, leaf.name = len(header), path[0]
			header = append(header, path[0])
			if col, ok := schema.Lookup(path...); ok {
				if lt := col.Node.Type().LogicalType(); lt != nil {
					leaf.kind, leaf.has = *lt, true
				}
			}
		}
		s.leaves = append(s.leaves, leaf)
	}
	s.cells = make([]string, len(header))
	return newFocusReaderOf(s, header, path, RowProblem{InRow: true})
}

// openParquet and readParquetRows call the Parquet library, turning a
// panic into an error: the file comes from outside, and a damaged one
// must be reported as such, not crash ledgerctl.
func openParquet(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%v", p)
		}
	}()
	footerLen, err := checkParquetFooter(r, size)
	if err != nil {
		return nil, err
	}
	// The page index and bloom filters serve queries that skip rows; an
	// import reads every row, so they would only cost memory.
	if f, err = parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)); err != nil {
		return nil, err
	}
	if err := checkParquetPages(r, size, footerLen, f.Metadata()); err != nil {
		return nil, err
	}
	return f, nil
}

func readParquetRows(r *parquet.Reader, rows []parquet.Row) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("%v", p)
		}
	}()
	return r.ReadRows(rows)
}

func (s *parquetSource) next() (int, []string, *RowProblem, error) {
	if s.at == s.n {
		if s.done {
			return 0, nil, nil, io.EOF
		}
		n, err := readParquetRows(s.r, s.rows)
		s.n, s.at = n, 0
		switch {
		case errors.Is(err, io.EOF):
			s.done = true
		case err != nil:
			s.done = true
			return 0, nil, &RowProblem{InRow: true, Line: s.row + 1, Reason: "the Parquet file is damaged: " + err.Error()}, nil
		}
		if n == 0 {
			return 0, nil, nil, io.EOF
		}
	}
	row := s.rows[s.at]
	s.at++
	s.row++
	clear(s.cells)
	var problem *RowProblem
	row.Range(func(column int, values []parquet.Value) bool {
		if column >= len(s.leaves) || s.leaves[column].cell < 0 || len(values) == 0 {
			return true
		}
		leaf := s.leaves[column]
		v, err := parquetText(values[0], leaf)
		if err != nil && problem == nil {
			problem = &RowProblem{InRow: true, Line: s.row, Column: leaf.name, Reason: err.Error()}
		}
		s.cells[leaf.cell] = v
		return true
	})
	if problem != nil {
		return 0, nil, problem, nil
	}
	return s.row, s.cells, nil, nil
}

// parquetText writes a Parquet value as the text a FOCUS CSV file would
// hold: decimals exactly, timestamps in RFC 3339 UTC, NULL as empty.
func parquetText(v parquet.Value, leaf parquetLeaf) (string, error) {
	if v.IsNull() {
		return "", nil
	}
	lt := leaf.kind.Value
	switch t := lt.(type) {
	case *format.TimestampType:
		var at time.Time
		switch t.Unit.Value.(type) {
		case *format.MilliSeconds:
			at = time.UnixMilli(v.Int64())
		case *format.NanoSeconds:
			at = time.Unix(0, v.Int64())
		default:
			at = time.UnixMicro(v.Int64())
		}
		return at.UTC().Format(time.RFC3339Nano), nil
	case *format.DateType:
		return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02"), nil
	case *format.DecimalType:
		var unscaled big.Int
		switch v.Kind() {
		case parquet.Int32:
			unscaled.SetInt64(int64(v.Int32()))
		case parquet.Int64:
			unscaled.SetInt64(v.Int64())
		default: // big-endian two's complement
			b := v.ByteArray()
			unscaled.SetBytes(b)
			if len(b) > 0 && b[0]&0x80 != 0 {
				unscaled.Sub(&unscaled, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
			}
		}
		return scaled(&unscaled, int(t.Scale)), nil
	}
	switch v.Kind() {
	case parquet.Int96:
		// The legacy timestamp of Hive, Impala and Spark: nanoseconds of
		// the day in the first 64 bits, the Julian day in the last 32.
		w := v.Int96()
		const unixJulianDay = 2440588
		nanos := int64(w[1])<<32 | int64(w[0])
		at := time.Unix((int64(w[2])-unixJulianDay)*86400, nanos)
		return at.UTC().Format(time.RFC3339Nano), nil
	case parquet.Boolean:
		return strconv.FormatBool(v.Boolean()), nil
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10), nil
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10), nil
	case parquet.Float:
		// The shortest text that reads back as the same float: what the
		// writer of a float meant, as near as it can be known.
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32), nil
	case parquet.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), nil
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray()), nil
	}
	return "", fmt.Errorf("a value of Parquet type %s is not read", v.Kind())
}

// scaled writes unscaled × 10^-scale as plain decimal text.
func scaled(unscaled *big.Int, scale int) string {
	s := new(big.Int).Abs(unscaled).String()
	sign := ""
	if unscaled.Sign() < 0 {
		sign = "-"
	}
	if scale <= 0 {
		return sign + s + strings.Repeat("0", -scale)
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}
