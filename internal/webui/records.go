package webui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/catalog"
)

// The records officer's pages: deletion decisions by IVO (register; approve
// one that another officer registered) and legal holds.

type recordsView struct {
	Pending   []decisionView
	Error     string
	Notice    string
	Case      string
	DecidedOn string
	DocSHA    string
	IDs       string
	Recording string
	Holds     []holdView
	Reference string
	Shown     bool
}

type decisionView struct {
	ID                int64
	Case, DecidedOn   string
	RegisteredBy, At  string
	RegisteredByHSAID string
	Recordings        []string
	// Mine: the viewer registered it, so may not approve it.
	Mine bool
}

type holdView struct {
	ID                      int64
	Reference, SetBy, SetAt string
	ReleasedBy, ReleasedAt  string
	Active                  bool
}

func (h *Handler) recordsHome(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.showRecords(w, r, rc, http.StatusOK, &recordsView{})
}

// showRecords renders the records page with the decisions awaiting
// approval (listing them is itself audited).
func (h *Handler) showRecords(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v *recordsView) {
	ds, err := h.arc.Decisions(r.Context(), rc.caller, catalog.StateRegistered)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	n := h.lookupNames(r.Context())
	for _, d := range ds {
		v.Pending = append(v.Pending, decisionView{ID: d.ID, Case: d.CaseNumber, DecidedOn: d.DecidedOn, RegisteredBy: n.user(d.RegisteredBy),
			RegisteredByHSAID: d.RegisteredBy, At: d.RegisteredAt.In(stockholm).Format("2006-01-02 15:04"), Recordings: d.Recordings,
			Mine: d.RegisteredBy == rc.caller.Principal.HSAID})
	}
	h.render(w, r, rc, status, "records", "Arkiv", v)
}

func (h *Handler) registerDecision(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := r.PostForm
	v := &recordsView{Case: strings.TrimSpace(f.Get("diarienummer")), DecidedOn: strings.TrimSpace(f.Get("beslutsdatum")),
		DocSHA: strings.ToLower(strings.TrimSpace(f.Get("dokument"))), IDs: f.Get("inspelningar")}
	d, err := h.arc.RegisterDeletion(r.Context(), rc.caller, archive.DeletionRequest{CaseNumber: v.Case, DecidedOn: v.DecidedOn,
		DocumentSHA256: v.DocSHA, Recordings: strings.Fields(v.IDs)})
	if err != nil {
		if msg, status, ok := formError(err); ok {
			v.Error = msg
			h.showRecords(w, r, rc, status, v)
			return
		}
		h.archiveError(w, r, rc, err)
		return
	}
	h.showRecords(w, r, rc, http.StatusOK, &recordsView{Notice: "Beslut " + strconv.FormatInt(d.ID, 10) +
		" är registrerat. En annan arkivansvarig måste godkänna det innan något raderas."})
}

// formError turns the errors a form can cause into a message shown beside
// the form (400 or 409); ok is false for anything else.
func formError(err error) (string, int, bool) {
	var inv *archive.InvalidError
	var conflict *archive.ConflictError
	switch {
	case errors.As(err, &inv):
		return invalidText(inv), http.StatusBadRequest, true
	case errors.As(err, &conflict):
		return conflictText(conflict), http.StatusConflict, true
	}
	return "", 0, false
}

func (h *Handler) approveDecision(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id, err := strconv.ParseInt(r.PostForm.Get("beslut"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, rc, http.StatusBadRequest, "Beslutet anges med sitt nummer.")
		return
	}
	d, err := h.arc.ApproveDeletion(r.Context(), rc.caller, id)
	if err != nil {
		var denied *archive.DeniedError
		if errors.As(err, &denied) && denied.Reason == archive.ReasonSelfApproval {
			h.showRecords(w, r, rc, http.StatusForbidden, &recordsView{Error: deniedText(denied.Reason)})
			return
		}
		if msg, status, ok := formError(err); ok {
			h.showRecords(w, r, rc, status, &recordsView{Error: msg})
			return
		}
		h.archiveError(w, r, rc, err)
		return
	}
	h.showRecords(w, r, rc, http.StatusOK, &recordsView{Notice: "Beslut " + strconv.FormatInt(d.ID, 10) + " är godkänt. " +
		strconv.Itoa(len(d.Recordings)) + " inspelningar är raderade (nyckeln förstörd, kopiorna borttagna på båda platserna)."})
}

// holds shows a recording's legal holds.
func (h *Handler) holds(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.showHolds(w, r, rc, http.StatusOK, strings.TrimSpace(r.PostForm.Get("inspelning")), "", "")
}

func (h *Handler) showHolds(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, id, notice, errMsg string) {
	v := &recordsView{Recording: id, Notice: notice, Error: errMsg}
	hs, err := h.arc.Holds(r.Context(), rc.caller, id)
	if err != nil {
		if msg, st, ok := formError(err); ok {
			v.Error = msg
			h.showRecords(w, r, rc, st, v)
			return
		}
		h.archiveError(w, r, rc, err)
		return
	}
	n := h.lookupNames(r.Context())
	v.Shown = true
	for _, x := range hs {
		hv := holdView{ID: x.ID, Reference: x.Reference, SetBy: n.user(x.SetBy), SetAt: x.SetAt.In(stockholm).Format("2006-01-02 15:04"),
			Active: x.ReleasedBy == ""}
		if !hv.Active {
			hv.ReleasedBy, hv.ReleasedAt = n.user(x.ReleasedBy), x.ReleasedAt.In(stockholm).Format(time.DateOnly)
		}
		v.Holds = append(v.Holds, hv)
	}
	h.showRecords(w, r, rc, status, v)
}

func (h *Handler) setHold(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := strings.TrimSpace(r.PostForm.Get("inspelning"))
	hold, err := h.arc.SetHold(r.Context(), rc.caller, id, strings.TrimSpace(r.PostForm.Get("referens")))
	if err != nil {
		if msg, st, ok := formError(err); ok {
			h.showRecords(w, r, rc, st, &recordsView{Recording: id, Error: msg})
			return
		}
		h.archiveError(w, r, rc, err)
		return
	}
	h.showHolds(w, r, rc, http.StatusOK, id, "Bevarandebeslut "+strconv.FormatInt(hold.ID, 10)+" är satt.", "")
}

func (h *Handler) releaseHold(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := strings.TrimSpace(r.PostForm.Get("inspelning"))
	holdID, err := strconv.ParseInt(r.PostForm.Get("spärr"), 10, 64)
	if err != nil || holdID <= 0 {
		h.fail(w, r, rc, http.StatusBadRequest, "Bevarandebeslutet anges med sitt nummer.")
		return
	}
	if _, err := h.arc.ReleaseHold(r.Context(), rc.caller, id, holdID); err != nil {
		if msg, st, ok := formError(err); ok {
			h.showRecords(w, r, rc, st, &recordsView{Recording: id, Error: msg})
			return
		}
		h.archiveError(w, r, rc, err)
		return
	}
	h.showHolds(w, r, rc, http.StatusOK, id, "Bevarandebeslutet är hävt.", "")
}
