package webui

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/auditreport"
)

// The auditor's pages: the patient log extract (the printable A4 document
// of docs/audit-reports.md), the log follow-up with findings to mark
// reviewed, and the incident report with its CSV. Each report is audited
// by the archive before it is made.

type reviewView struct {
	Patient, From, To string
	Error             string
	ErrorField        string
	Notice            string
	Report            *auditreport.ReviewReport
	Findings          []findingView
	Incident          *auditreport.IncidentReport
	User, Cert, Addr  string
	Outcomes          []struct{ Code, Text string }
}

type findingView struct {
	auditreport.Finding
	First, Last string
	UserName    string
	UnitName    string
	State       string
	Marks       []markView
}

type markView struct {
	Time, Reviewer, Outcome, Note string
}

var outcomes = []struct{ Code, Text string }{
	{auditreport.MarkNoAction, "Ingen åtgärd behövs"},
	{auditreport.MarkFollowedUp, "Följs upp"},
	{auditreport.MarkReported, "Anmäld"},
}

func outcomeText(code string) string {
	for _, o := range outcomes {
		if o.Code == code {
			return o.Text
		}
	}
	return code
}

func (h *Handler) reviewHome(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	today := h.now().In(stockholm)
	h.render(w, r, rc, http.StatusOK, "review", "Logguppföljning", &reviewView{
		From: today.AddDate(0, 0, -7).Format(time.DateOnly), To: today.Format(time.DateOnly), Outcomes: outcomes})
}

// window reads the form's fran/till days; it renders the form with an
// error and reports false if they are not a window.
func (h *Handler) window(w http.ResponseWriter, r *http.Request, rc *reqCtx, v *reviewView, required bool) (time.Time, time.Time, bool) {
	v.From, v.To = r.PostForm.Get("fran"), r.PostForm.Get("till")
	from, err1 := parseDay(v.From, false)
	to, err2 := parseDay(v.To, true)
	if err1 != nil || err2 != nil || (required && (from.IsZero() || to.IsZero())) || (!from.IsZero() && !to.IsZero() && !from.Before(to)) {
		v.Error, v.ErrorField = invalidText(&archive.InvalidError{Field: "from"}), "fran"
		h.render(w, r, rc, http.StatusBadRequest, "review", "Logguppföljning", v)
		return time.Time{}, time.Time{}, false
	}
	return from, to, true
}

// extract: the patient log extract as its own printable document.
func (h *Handler) extract(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	v := &reviewView{Patient: strings.TrimSpace(r.PostForm.Get("personnummer")), Outcomes: outcomes}
	from, to, ok := h.window(w, r, rc, v, false)
	if !ok {
		return
	}
	x, err := h.arc.AuditExtract(r.Context(), rc.caller, v.Patient, from, to)
	var inv *archive.InvalidError
	if errors.As(err, &inv) {
		v.Error, v.ErrorField = invalidText(inv), "personnummer"
		h.render(w, r, rc, http.StatusBadRequest, "review", "Logguppföljning", v)
		return
	}
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	var buf bytes.Buffer
	if err := x.WriteHTML(&buf); err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	// The extract is a self-contained document with one <style> element;
	// its hash is the only style the policy allows, and no script at all.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src '"+styleHash(buf.Bytes())+"'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// styleHash returns the CSP source for the document's first <style>
// element ('sha256-…'), or 'none' if it has none.
func styleHash(doc []byte) string {
	_, rest, ok := bytes.Cut(doc, []byte("<style>"))
	if !ok {
		return "none"
	}
	css, _, ok := bytes.Cut(rest, []byte("</style>"))
	if !ok {
		return "none"
	}
	sum := sha256.Sum256(css)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func (h *Handler) followUp(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.showReview(w, r, rc, "")
}

func (h *Handler) showReview(w http.ResponseWriter, r *http.Request, rc *reqCtx, notice string) {
	v := &reviewView{Outcomes: outcomes, Notice: notice}
	from, to, ok := h.window(w, r, rc, v, true)
	if !ok {
		return
	}
	rep, err := h.arc.AuditReview(r.Context(), rc.caller, from, to)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	v.Report = rep
	n := h.lookupNames(r.Context())
	for _, f := range rep.Findings {
		fv := findingView{Finding: f, First: f.First.In(stockholm).Format("2006-01-02 15:04"), Last: f.Last.In(stockholm).Format("2006-01-02 15:04"),
			UserName: n.user(f.User), UnitName: n.unit(f.CareUnit), State: "Ej granskad"}
		for _, m := range f.Marks {
			fv.Marks = append(fv.Marks, markView{Time: m.Time.In(stockholm).Format("2006-01-02 15:04"), Reviewer: n.user(m.Reviewer),
				Outcome: outcomeText(m.Outcome), Note: m.Note})
		}
		if len(f.Marks) > 0 {
			fv.State = "Granskad: " + outcomeText(f.Marks[len(f.Marks)-1].Outcome)
		}
		v.Findings = append(v.Findings, fv)
	}
	h.render(w, r, rc, http.StatusOK, "followup", "Logguppföljning", v)
}

// mark records a finding's review mark, then shows the report again.
func (h *Handler) mark(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := r.PostForm
	if _, err := h.arc.AuditMark(r.Context(), rc.caller, f.Get("avvikelse"), f.Get("utfall"), strings.TrimSpace(f.Get("anteckning"))); err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	h.showReview(w, r, rc, "Avvikelsen är markerad som granskad.")
}

func (h *Handler) incident(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := r.PostForm
	v := &reviewView{Outcomes: outcomes, User: strings.TrimSpace(f.Get("anvandare")), Cert: strings.TrimSpace(f.Get("certifikat")),
		Addr: strings.TrimSpace(f.Get("adress"))}
	from, to, ok := h.window(w, r, rc, v, true)
	if !ok {
		return
	}
	actor := auditreport.Actor{User: v.User, CertFingerprint: strings.ToLower(v.Cert)}
	if v.Addr != "" {
		p, err := auditreport.ParseAddress(v.Addr)
		if err != nil {
			v.Error, v.ErrorField = "Ange en IP-adress eller ett nät (CIDR), till exempel 192.0.2.0/24.", "adress"
			h.render(w, r, rc, http.StatusBadRequest, "review", "Logguppföljning", v)
			return
		}
		actor.Address = p
	}
	rep, err := h.arc.AuditIncident(r.Context(), rc.caller, from, to, actor)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	if f.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="incident.csv"`)
		rep.WriteCSV(w)
		return
	}
	v.Incident = rep
	h.render(w, r, rc, http.StatusOK, "incident", "Incidentrapport", v)
}
