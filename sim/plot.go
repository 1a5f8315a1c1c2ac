package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Mark is a fault to show on a plot: an instant (Until zero) or a span.
type Mark struct {
	Label string
	At    float64 // elapsed seconds
	Until float64 // elapsed seconds; 0 for an instant
}

// WriteSVG draws the report's curves: the fraction of the nodes aware of
// each crash (DEAD) and of each broadcast (delivered) over time, with the
// faults marked, as a standalone SVG image. title heads the image.
func (r *Report) WriteSVG(w io.Writer, title string) error {
	const (
		width, height          = 960, 540
		left, right, top, base = 60, 250, 60, 60 // margins
		plotW, plotH           = width - left - right, height - top - base
	)
	tmax := r.SimSeconds
	if tmax <= 0 {
		tmax = 1
	}
	x := func(t float64) float64 { return left + t/tmax*plotW }
	y := func(f float64) float64 { return top + (1-f)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555">fraction of the live nodes aware of each crash (DEAD) and broadcast (delivered)</text>`+"\n", left)

	// Spans (partitions, pauses) under everything else.
	for _, m := range r.Marks {
		if m.Until > m.At {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f4e3b0" opacity="0.6"/>`+"\n",
				x(m.At), top, math.Max(x(m.Until)-x(m.At), 1), plotH)
		}
	}
	// Grid and axes.
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(f), left+plotW, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%d%%</text>`+"\n", left-6, y(f), i*25)
	}
	step := niceStep(tmax / 10)
	for t := 0.0; t <= tmax+1e-9; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x(t), top, x(t), top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), top+plotH+16, trimFloat(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">simulated time (s)</text>`+"\n", left+plotW/2, height-18)

	// Instants (crashes, restarts) as dashed lines.
	for _, m := range r.Marks {
		if m.Until <= m.At {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="4 3"/>`+"\n",
				x(m.At), top, x(m.At), top+plotH)
		}
	}

	// The curves: each a step function from 0 at its start.
	reds := []string{"#c0392b", "#e74c3c", "#922b21", "#d35400", "#a04000", "#cb4335"}
	blues := []string{"#1f618d", "#2e86c1", "#148f77", "#5dade2", "#1a5276", "#17a589"}
	var legend []string
	nc, nb := 0, 0
	for _, c := range r.Curves {
		var color string
		if c.Kind == "crash" {
			color = reds[nc%len(reds)]
			nc++
		} else {
			color = blues[nb%len(blues)]
			nb++
		}
		if c.Total == 0 {
			continue
		}
		pts := []string{fmt.Sprintf("%.1f,%.1f", x(c.At), y(0))}
		prevF := 0.0
		stride := max(1, len(c.Times)/1500) // at most ~1500 steps a curve
		for i := 0; i < len(c.Times); i += stride {
			j := min(i+stride-1, len(c.Times)-1)
			t, f := c.Times[j], float64(j+1)/float64(c.Total)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(t), y(prevF), x(t), y(f)))
			prevF = f
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(tmax), y(prevF)))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		label := c.Label
		if len(c.Times) > 0 {
			label += fmt.Sprintf(": all in %s", secs(c.Times[len(c.Times)-1]-c.At))
			if len(c.Times) < c.Total {
				label = c.Label + fmt.Sprintf(": %.1f%% by the end", 100*float64(len(c.Times))/float64(c.Total))
			}
		}
		legend = append(legend, fmt.Sprintf(`<line x1="0" y1="0" x2="18" y2="0" stroke="%s" stroke-width="3"/><text x="24" y="0" dominant-baseline="middle">%s</text>`,
			color, html.EscapeString(label)))
	}
	for _, m := range r.Marks {
		if m.Until > m.At {
			legend = append(legend, fmt.Sprintf(`<rect x="0" y="-6" width="18" height="12" fill="#f4e3b0"/><text x="24" y="0" dominant-baseline="middle">%s</text>`,
				html.EscapeString(fmt.Sprintf("%s %s-%s s", m.Label, trimFloat(m.At), trimFloat(m.Until)))))
		} else {
			legend = append(legend, fmt.Sprintf(`<line x1="9" y1="-7" x2="9" y2="7" stroke="#999" stroke-dasharray="4 3"/><text x="24" y="0" dominant-baseline="middle">%s</text>`,
				html.EscapeString(fmt.Sprintf("%s at %s s", m.Label, trimFloat(m.At)))))
		}
	}
	if len(legend) > 28 {
		legend = append(legend[:27], fmt.Sprintf(`<text x="0" y="0" dominant-baseline="middle">... and %d more</text>`, len(legend)-27))
	}
	for i, l := range legend {
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)" font-size="11">%s</g>`+"\n", left+plotW+12, top+8+i*16, l)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
