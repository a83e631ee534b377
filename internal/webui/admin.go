package webui

import (
	"net/http"
	"slices"
	"strings"

	"callvault/internal/archive"
)

// The administrator's page: users, units and roles; sites, keys and the
// replication backlog. It shows no patient data and no recording IDs.

type adminView struct {
	*archive.Overview
	Epochs []epochView
	Users  []userView
	Units  []unitView
	Epoch  string
}

type userView struct {
	HSAID, Name, Provider, Unit, Roles string
	Disabled                           bool
}

type unitView struct{ HSAID, Provider, Name string }

type epochView struct{ Epoch, Recordings int }

func (h *Handler) admin(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	o, err := h.arc.AdminOverview(r.Context(), rc.caller)
	if err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	v := &adminView{Overview: o, Epoch: o.KeyEpochCreated.In(stockholm).Format("2006-01-02 15:04")}
	n := h.lookupNames(r.Context())
	for _, u := range o.Users {
		var roles []string
		for _, ro := range u.Roles {
			roles = append(roles, string(ro))
		}
		v.Users = append(v.Users, userView{HSAID: u.HSAID, Name: u.DisplayName, Provider: u.CareProvider, Unit: n.unit(u.CareUnit),
			Roles: strings.Join(roles, ", "), Disabled: u.Disabled})
	}
	for _, u := range o.Units {
		v.Units = append(v.Units, unitView{HSAID: u.HSAID, Provider: u.CareProvider, Name: u.Name})
	}
	for e, c := range o.RecordingsByEpoch {
		v.Epochs = append(v.Epochs, epochView{Epoch: e, Recordings: c})
	}
	slices.SortFunc(v.Epochs, func(a, b epochView) int { return a.Epoch - b.Epoch })
	h.render(w, r, rc, http.StatusOK, "admin", "Administration", v)
}
