package sim_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlotIsWellFormedSVG(t *testing.T) {
	res, err := everything(11).Run()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.Report.WriteSVG(&buf, `40 nodes, "everything" <scenario> & more`))
	svg := buf.String()
	require.True(t, strings.HasPrefix(svg, `<svg xmlns="http://www.w3.org/2000/svg"`))
	// It parses as XML, every element closed, the title escaped.
	dec := xml.NewDecoder(strings.NewReader(svg))
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if err != nil {
			assert.Equal(t, "EOF", err.Error())
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			elements[se.Name.Local]++
		}
	}
	assert.Equal(t, len(res.Report.Curves), elements["polyline"], "one curve per crash and broadcast")
	assert.GreaterOrEqual(t, elements["polyline"], 4)
	assert.Contains(t, svg, "&lt;scenario&gt; &amp; more")
	assert.Contains(t, svg, "crash n")
	assert.Contains(t, svg, "partition (5 nodes)")
	assert.Contains(t, svg, "cut (3+3 nodes)")
	assert.Contains(t, svg, "restart n")

	marks := res.Report.Marks
	require.NotEmpty(t, marks)
	for _, m := range marks {
		if strings.HasPrefix(m.Label, "partition") {
			assert.InDelta(t, (17 * time.Second).Seconds(), m.At, 1e-9)
			assert.InDelta(t, (23 * time.Second).Seconds(), m.Until, 1e-9)
		}
	}
}
