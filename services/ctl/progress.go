package ctl

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// progress draws a one-line progress bar, redrawn in place with a carriage
// return: for a terminal. A nil *progress draws nothing, so callers need
// not ask whether there is one.
type progress struct {
	w      io.Writer
	now    func() time.Time
	start  time.Time
	drawn  time.Time
	total  int // rows expected
	width  int // of the last line drawn, to blank what a shorter one leaves
	active bool
}

// redrawEvery bounds how often the bar is redrawn: more often than a
// person can read only costs the terminal.
const redrawEvery = 100 * time.Millisecond

// barWidth is the number of marks of a full progress bar.
const barWidth = 30

func (c *Client) newProgress(total int) *progress {
	if !c.cfg.Progress {
		return nil
	}
	now := c.cfg.Now()
	return &progress{w: c.cfg.Err, now: c.cfg.Now, start: now, total: total}
}

// rows shows rows published so far, in batches.
func (p *progress) rows(done, batches int) {
	if p == nil || !p.due(done == p.total) {
		return
	}
	p.draw(renderProgress(done, p.total, batches, p.now().Sub(p.start)))
}

// checked shows how many rows the first reading of a file has checked:
// the file's rows are not known before it ends.
func (p *progress) checked(rows int) {
	if p == nil || !p.due(false) {
		return
	}
	p.draw(fmt.Sprintf("checking: %s rows read", thousands(rows)))
}

// ingested shows how many of the published messages ledgerd has taken.
func (p *progress) ingested(done, total int) {
	if p == nil || !p.due(done == total) {
		return
	}
	p.draw(fmt.Sprintf("waiting for ledgerd: %s/%s %s ingested", thousands(done), thousands(total), plural(total, "message", "messages")))
}

// done ends the bar's line.
func (p *progress) done() {
	if p == nil || !p.active {
		return
	}
	fmt.Fprintln(p.w)
	p.active = false
}

func (p *progress) due(last bool) bool {
	now := p.now()
	if !last && p.active && now.Sub(p.drawn) < redrawEvery {
		return false
	}
	p.drawn = now
	return true
}

func (p *progress) draw(line string) {
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
	p.active = true
}

// renderProgress writes the bar of done rows out of total, in batches,
// after elapsed: "[###-------]  10%  100/1,000 rows  1 batch  500 rows/s".
func renderProgress(done, total, batches int, elapsed time.Duration) string {
	fill := 0
	percent := 100
	if total > 0 {
		fill = done * barWidth / total
		percent = done * 100 / total
	}
	var b strings.Builder
	b.WriteString("[" + strings.Repeat("#", fill) + strings.Repeat("-", barWidth-fill) + "]")
	fmt.Fprintf(&b, " %3d%%  %s/%s rows  %s %s", percent, thousands(done), thousands(total), thousands(batches), plural(batches, "batch", "batches"))
	if elapsed > 0 {
		// A rate is a measurement, not money: a float is the right tool.
		rate := int64(float64(done) / elapsed.Seconds())
		fmt.Fprintf(&b, "  %s rows/s", thousands64(rate))
	}
	return b.String()
}

// thousands writes n with a comma between groups of three digits.
func thousands(n int) string { return thousands64(int64(n)) }

func thousands64(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
