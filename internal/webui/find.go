package webui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
)

// Find and listen: a clinician searches a patient's calls (POST, so the
// personnummer never lands in a URL), picks one, states a purpose (and for
// another unit's call, a written emergency reason in a second step), and
// plays it through an audio link that carries the grant sealed.

// searchInput is the search form as sent, echoed back into the form.
type searchInput struct {
	Patient, From, To, Purpose string
	Reason                     string
	Emergency                  bool
}

func readSearch(r *http.Request) searchInput {
	f := r.PostForm
	return searchInput{Patient: strings.TrimSpace(f.Get("personnummer")), From: f.Get("fran"), To: f.Get("till"),
		Purpose: f.Get("syfte"), Reason: strings.TrimSpace(f.Get("skal")), Emergency: f.Get("nodatkomst") == "1"}
}

type searchView struct {
	In       searchInput
	Purposes []struct{ Code, Text string }
	Error    string
	// ErrorField names the input the error belongs to.
	ErrorField string
	Searched   bool
	Hits       []hitView
	Hidden     int
}

type hitView struct {
	Date, Time, Duration, Unit string
	Staff                      []string
	Emergency                  bool
	Token                      string
}

func (h *Handler) searchForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.render(w, r, rc, http.StatusOK, "search", "Sök samtal", &searchView{Purposes: purposes})
}

// parseDay reads a YYYY-MM-DD form date as the start of that day in
// Stockholm; end adds a day (the search window is [from, to)).
func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, stockholm)
	if err != nil {
		return time.Time{}, err
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// hit is sealed into each result's "listen" button: the recording a
// search of this session found, and what the listen page shows of it.
type hit struct {
	SID       string    `json:"s"`
	ID        string    `json:"i"`
	Start     time.Time `json:"a"`
	End       time.Time `json:"b"`
	Unit      string    `json:"u"`
	Staff     []string  `json:"t"`
	Emergency bool      `json:"e"`
	Reason    string    `json:"r,omitempty"`
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	in := readSearch(r)
	v := &searchView{In: in, Purposes: purposes}
	if in.Emergency && r.PostForm.Get("bekrafta") != "1" {
		h.emergencyPage(w, r, rc, in, "Bekräfta att du begär nödåtkomst och att åtkomsten granskas.")
		return
	}
	if in.Emergency && in.Reason == "" {
		h.emergencyPage(w, r, rc, in, "Skriv ett skäl för nödåtkomsten.")
		return
	}
	if !in.Emergency {
		in.Reason = ""
	}
	from, err1 := parseDay(in.From, false)
	to, err2 := parseDay(in.To, true)
	if err1 != nil || err2 != nil || (!from.IsZero() && !to.IsZero() && !from.Before(to)) {
		v.Error, v.ErrorField = "Ange datum som ÅÅÅÅ-MM-DD, med från-datum före eller samma som till-datum.", "fran"
		h.render(w, r, rc, http.StatusBadRequest, "search", "Sök samtal", v)
		return
	}
	res, err := h.arc.Search(r.Context(), rc.caller, archive.Access{Purpose: in.Purpose, EmergencyReason: in.Reason},
		archive.Query{Patient: in.Patient, From: from, To: to})
	var inv *archive.InvalidError
	if errors.As(err, &inv) {
		v.Error, v.ErrorField = invalidText(inv), map[string]string{"patient": "personnummer", "purpose": "syfte", "emergency_reason": "skal"}[inv.Field]
		h.render(w, r, rc, http.StatusBadRequest, "search", "Sök samtal", v)
		return
	}
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	n := h.lookupNames(r.Context())
	v.Searched, v.Hidden = true, res.NeedEmergency
	for _, s := range res.Hits {
		hv := hitView{Date: s.StartedAt.In(stockholm).Format("2006-01-02"), Time: s.StartedAt.In(stockholm).Format("15:04"),
			Duration: duration(s.EndedAt.Sub(s.StartedAt)), Unit: n.unit(s.CareUnit), Emergency: s.Emergency}
		for _, st := range s.Staff {
			hv.Staff = append(hv.Staff, n.user(st))
		}
		t := hit{SID: rc.session.ID, ID: s.ID, Start: s.StartedAt, End: s.EndedAt, Unit: hv.Unit, Staff: hv.Staff, Emergency: s.Emergency}
		if s.Emergency {
			t.Reason = in.Reason
		}
		if hv.Token, err = h.tok.seal("hit", t); err != nil {
			h.archiveError(w, r, rc, err)
			return
		}
		v.Hits = append(v.Hits, hv)
	}
	h.render(w, r, rc, http.StatusOK, "search", "Sökresultat", v)
}

// emergencyStep: the deliberate second step before a search with
// emergency access. It explains, asks for the written reason and a
// confirmation, and says that the access will be reviewed.
func (h *Handler) emergencyStep(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.emergencyPage(w, r, rc, readSearch(r), "")
}

func (h *Handler) emergencyPage(w http.ResponseWriter, r *http.Request, rc *reqCtx, in searchInput, msg string) {
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	}
	h.render(w, r, rc, status, "emergency", "Nödåtkomst", &searchView{In: in, Purposes: purposes, Error: msg})
}

func duration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d", m, sec)
}

type listenView struct {
	Hit       hit
	Token     string
	Date      string
	Time      string
	Duration  string
	Purposes  []struct{ Code, Text string }
	Purpose   string
	Reason    string
	Error     string
	Direction string
	// Audio is the sealed audio link, set once the purpose is stated.
	Audio        string
	PurposeText  string
	ContentType  string
	AudioSeconds int
}

func (h *Handler) openHit(r *http.Request, rc *reqCtx) (hit, string, bool) {
	tok := r.PostForm.Get("traff")
	var t hit
	if h.tok.open("hit", tok, &t) != nil || t.SID != rc.session.ID {
		return hit{}, "", false
	}
	return t, tok, true
}

func (h *Handler) listenView(t hit, tok string) *listenView {
	return &listenView{Hit: t, Token: tok, Purposes: purposes, Reason: t.Reason,
		Date: t.Start.In(stockholm).Format("2006-01-02"), Time: t.Start.In(stockholm).Format("15:04"), Duration: duration(t.End.Sub(t.Start))}
}

// listenStep: before the first play the user states a purpose; for another
// unit's call the page explains emergency access and asks again for the
// written reason and a confirmation.
func (h *Handler) listenStep(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	t, tok, ok := h.openHit(r, rc)
	if !ok {
		h.refuse(w, r, rc, string(access.ActionReadMetadata), "hit", "Valet hör inte till en sökning i den här sessionen. Sök igen.")
		return
	}
	h.render(w, r, rc, http.StatusOK, "listen", "Lyssna", h.listenView(t, tok))
}

// grant is sealed into the audio link: who may play which recording, with
// what purpose and emergency reason, until when. The audio element's
// requests (Range requests when seeking) cannot carry headers, so the
// link carries the stated purpose; sealing keeps the reason unreadable in
// the page and the link unusable outside this session and certificate.
type grant struct {
	SID     string `json:"s"`
	FP      string `json:"f"`
	ID      string `json:"i"`
	Purpose string `json:"p"`
	Reason  string `json:"r,omitempty"`
	Exp     int64  `json:"x"`
}

// grantLifetime bounds an audio link's life; the session's idle timeout
// ends it sooner.
const grantLifetime = 4 * time.Hour

func (h *Handler) listen(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	t, tok, ok := h.openHit(r, rc)
	if !ok {
		h.refuse(w, r, rc, string(access.ActionReadMetadata), "hit", "Valet hör inte till en sökning i den här sessionen. Sök igen.")
		return
	}
	v := h.listenView(t, tok)
	v.Purpose = r.PostForm.Get("syfte")
	a := archive.Access{Purpose: v.Purpose}
	if t.Emergency {
		v.Reason = strings.TrimSpace(r.PostForm.Get("skal"))
		switch {
		case v.Reason == "":
			v.Error = "Skriv ett skäl för nödåtkomsten."
		case r.PostForm.Get("bekrafta") != "1":
			v.Error = "Bekräfta att du använder nödåtkomst och att åtkomsten granskas."
		}
		a.EmergencyReason = v.Reason
	}
	if _, err := access.ParsePurpose(v.Purpose); err != nil && v.Error == "" {
		v.Error = "Välj ett syfte."
	}
	if v.Error != "" {
		h.render(w, r, rc, http.StatusBadRequest, "listen", "Lyssna", v)
		return
	}
	d, err := h.arc.Get(r.Context(), rc.caller, a, t.ID)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	g := grant{SID: rc.session.ID, FP: rc.session.FP, ID: t.ID, Purpose: v.Purpose, Reason: a.EmergencyReason,
		Exp: h.now().Add(grantLifetime).Unix()}
	if v.Audio, err = h.tok.seal("audio", g); err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	// What the player shows comes from the catalog row just read, not from
	// the search's copy.
	v.Date, v.Time = d.StartedAt.In(stockholm).Format("2006-01-02"), d.StartedAt.In(stockholm).Format("15:04")
	v.Duration = duration(d.EndedAt.Sub(d.StartedAt))
	v.PurposeText, v.ContentType = purposeText(v.Purpose), d.ContentType
	v.Direction = map[string]string{"inbound": "Inkommande", "outbound": "Utgående"}[d.Direction]
	v.AudioSeconds = int(d.EndedAt.Sub(d.StartedAt).Seconds())
	h.render(w, r, rc, http.StatusOK, "player", "Lyssna", v)
}

// audio: GET /ljud/{token}, the audio of a grant, with Range support.
// Each request is a play in the audit log, with its range.
func (h *Handler) audio(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var g grant
	if h.tok.open("audio", r.PathValue("token"), &g) != nil || g.SID != rc.session.ID || g.FP != rc.session.FP || h.now().Unix() > g.Exp {
		h.refuse(w, r, rc, string(access.ActionPlay), "link", "Ljudlänken gäller inte längre. Välj samtalet på nytt.")
		return
	}
	detail := "range=full"
	if rg := r.Header.Get("Range"); rg != "" {
		detail = "range=" + rg
		if len(detail) > 200 {
			detail = detail[:200]
		}
	}
	a, err := h.arc.OpenAudio(r.Context(), rc.caller, archive.Access{Purpose: g.Purpose, EmergencyReason: g.Reason}, g.ID, detail)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	defer a.Close()
	w.Header().Set("Content-Type", a.ContentType)
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(a, 0, a.Size()))
}
