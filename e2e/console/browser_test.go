package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the console's origin
	dir  string // where screenshots go
	shot int

	mu      sync.Mutex
	dialogs []string // every JavaScript dialog the pages opened
	alerts  []string // … of which alert() ones (an XSS would open one)
}

// chromium finds Debian's chromium (scripts/install-deps.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run scripts/install-deps.sh (Debian's chromium package)")
	return ""
}

// newBrowser starts a headless Chromium (no sandbox: the tests run as
// root) that accepts every confirm() and records every dialog.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, dir: t.ArtifactDir()}
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for e, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(e.Type)+": "+e.Message)
			if e.Type == page.DialogTypeAlert {
				b.alerts = append(b.alerts, e.Message)
			}
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	t.Logf("chromium started in %v; screenshots in %s", time.Since(start).Round(time.Millisecond), b.dir)
	return b
}

// run runs actions with a deadline, failing the test on error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// fail saves a screenshot of the page and fails the test.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
	b.t.Fatalf("%s (at %s): %v", what, loc, err)
}

// value runs an action that returns a value, failing the test on error.
func value[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// andLoad runs trigger (a click, a submit, a key) and waits for the page
// it loads, so that a wait for an element finds it on the new page and not
// on the old one.
func andLoad(trigger chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, func(page.EventLoadEventFired) bool { return true }, trigger)(ctx, t)
		return err
	})
}

// open navigates to a path of the console and waits for the element sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text is the text of the element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return value(b, "read "+sel, chromedp.TextContent(chromedp.CSS(sel)))
}

// location is the tab's URL path and query.
func (b *browser) location() string {
	b.t.Helper()
	return strings.TrimPrefix(value(b, "location", chromedp.Location()), b.base)
}

// screenshot saves the whole page as NN-name.png and logs how the page
// loaded (Navigation Timing: time to first byte, to DOMContentLoaded, and
// the HTML's size).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.shot++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	m, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]float64](`(() => {
		const n = performance.getEntriesByType("navigation")[0];
		return n ? {ttfb: n.responseStart - n.requestStart, dcl: n.domContentLoadedEventEnd - n.startTime,
			load: n.loadEventEnd - n.startTime, html: n.encodedBodySize} : {};
	})()`))
	if err != nil {
		b.t.Errorf("timing of %s: %v", name, err)
	}
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	unlabelled := value(b, "labels", chromedp.Evaluate[[]string](`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(e => !e.labels || e.labels.length === 0).map(e => e.name || e.id)`))
	if len(unlabelled) > 0 {
		b.t.Errorf("page %s has inputs without a label: %q", name, unlabelled)
	}
	b.t.Logf("page %-22s html %5.0f B  first byte %4.1f ms  DOMContentLoaded %5.1f ms  load %5.1f ms", name, m["html"], m["ttfb"], m["dcl"], m["load"])
}

// noAlerts fails the test if any page opened an alert().
func (b *browser) noAlerts() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.alerts) > 0 {
		b.t.Fatalf("a page ran injected script: alert(%q)", b.alerts)
	}
}

// confirms counts the confirm() dialogs shown so far.
func (b *browser) confirms() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, d := range b.dialogs {
		if strings.HasPrefix(d, string(page.DialogTypeConfirm)) {
			n++
		}
	}
	return n
}
