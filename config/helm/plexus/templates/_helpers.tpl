{{/*
plexus.labels: the labels every object of the release carries besides config/'s own. They say
which release made the object, so `kubectl get ... -l app.kubernetes.io/instance=<release>` finds
it; the selector labels of the operator Deployment stay config/'s, so an upgrade never needs to
replace the Deployment.
*/}}
{{- define "plexus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
