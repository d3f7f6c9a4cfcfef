package console

import (
	"strconv"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Chart geometry, in SVG user units: the chart scales to its container
// through its viewBox.
const (
	chartWidth  = 720
	chartHeight = 300
	chartTop    = 24 // room for the amount above the tallest bar
	chartBottom = 40 // room for the month below the bars
	chartLeft   = 8
	chartRight  = 8
)

// bar is one drawn bar of the dashboard.
type bar struct {
	Month  string
	Amount string // as the query service wrote it, the currency's minor units
	Draft  bool   // the open month: its draft, drawn distinctly
	// Status is "issued", "draft", or empty before the first close.
	Status string
	Href   string
	X, Y   float64
	W, H   float64
	LabelX float64
	LabelY float64
}

// chart is the dashboard's SVG bar chart, laid out on the server.
type chart struct {
	Width, Height float64
	Baseline      float64
	Bars          []bar
}

// layout draws bars of heights in proportion to their amounts, the
// largest reaching the top. The amounts are parsed to float64 for the
// geometry alone: a pixel does not need exact decimals, and every figure
// shown is the query service's string. A negative total (a month of
// credits) is drawn with no height.
func layout(bars []*billingv1.DashboardBar, statuses map[string]string, href func(month string) string) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Baseline: chartHeight - chartBottom}
	if len(bars) == 0 {
		return c
	}
	values := make([]float64, len(bars))
	maxValue := 0.0
	for i, b := range bars {
		v, err := strconv.ParseFloat(b.GetAmount().GetAmount(), 64)
		if err != nil || v < 0 {
			v = 0
		}
		values[i] = v
		maxValue = max(maxValue, v)
	}
	plot := float64(chartHeight - chartTop - chartBottom)
	slot := float64(chartWidth-chartLeft-chartRight) / float64(len(bars))
	width := slot * 0.7
	for i, b := range bars {
		h := 0.0
		if maxValue > 0 {
			h = values[i] / maxValue * plot
		}
		x := chartLeft + slot*float64(i) + (slot-width)/2
		c.Bars = append(c.Bars, bar{
			Month:  b.GetMonth(),
			Amount: b.GetAmount().GetAmount(),
			Draft:  statuses[b.GetMonth()] == "draft",
			Status: statuses[b.GetMonth()],
			Href:   href(b.GetMonth()),
			X:      x, Y: c.Baseline - h, W: width, H: h,
			LabelX: x + width/2, LabelY: c.Baseline - h - 6,
		})
	}
	return c
}
