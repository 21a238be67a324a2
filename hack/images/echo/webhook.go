package main

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// DenyLabel makes the webhook refuse an object: an object carrying it is denied with the label's
// value in the message; any other object is allowed.
const DenyLabel = "echo.plexus.dev/deny"

// admissionReview is the part of an admission.k8s.io/v1 AdmissionReview the webhook reads and
// writes (the image stays free of Kubernetes modules).
type admissionReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Request    *admissionRequest  `json:"request,omitempty"`
	Response   *admissionResponse `json:"response,omitempty"`
}

type admissionRequest struct {
	UID    string `json:"uid"`
	Object struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	} `json:"object"`
}

type admissionResponse struct {
	UID     string `json:"uid"`
	Allowed bool   `json:"allowed"`
	Status  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status,omitempty"`
}

// validate answers an AdmissionReview: allowed, unless the object carries DenyLabel.
func validate(w http.ResponseWriter, r *http.Request) {
	var in admissionReview
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
		http.Error(w, fmt.Sprintf("want an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp := &admissionResponse{UID: in.Request.UID, Allowed: true}
	if why, deny := in.Request.Object.Metadata.Labels[DenyLabel]; deny {
		resp.Allowed = false
		resp.Status = &struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}{http.StatusForbidden, "denied by the echo webhook: " + why}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionReview{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview", Response: resp})
}
