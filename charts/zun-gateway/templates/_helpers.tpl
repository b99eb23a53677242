{{/* Names and labels. */}}
{{- define "zun-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zun-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "zun-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zun-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zun-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zun-gateway.labels" -}}
helm.sh/chart: {{ include "zun-gateway.chart" . }}
{{ include "zun-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zun-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zun-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where the mounted files are; the ConfigMap names the same paths. */}}
{{- define "zun-gateway.paths" -}}
config: /etc/zun-gateway
tls: /etc/zun-gateway/tls
clientCa: /etc/zun-gateway/client-ca
keystoneCa: /etc/zun-gateway/keystone-ca
docker: /etc/zun-gateway/docker
clusters: /etc/zun-gateway/clusters
{{- end }}

{{- define "zun-gateway.tlsEnabled" -}}
{{- if .Values.tls.secretName }}true{{ end }}
{{- end }}

{{/* terminationGracePeriodSeconds: preStop sleep + the gateway's drain time + a margin, so SIGKILL never cuts the drain. */}}
{{- define "zun-gateway.terminationGracePeriodSeconds" -}}
{{- $grace := .Values.config.shutdown.graceSeconds | float64 | ceil | int }}
{{- add (int .Values.lifecycle.preStopSleepSeconds) $grace (int .Values.lifecycle.terminationMarginSeconds) }}
{{- end }}

{{/*
The gateway's configuration file. Built as a dict and printed with toYaml, so every value is quoted correctly.
Secrets are never values here: ${GATEWAY_PASSWORD} / ${GATEWAY_APP_CRED_SECRET} are substituted by the gateway from
environment variables that come from keystone.credentials.existingSecret.
*/}}
{{- define "zun-gateway.config" -}}
{{- $paths := include "zun-gateway.paths" . | fromYaml }}
{{- $c := .Values.config }}
{{- $listen := dict "host" "0.0.0.0" "port" (int $c.listen.port) }}
{{- if .Values.tls.secretName }}
{{- $tls := dict "certFile" (printf "%s/%s" $paths.tls .Values.tls.certKey) "keyFile" (printf "%s/%s" $paths.tls .Values.tls.keyKey) "reloadIntervalSeconds" .Values.tls.reloadIntervalSeconds }}
{{- if .Values.tls.clientCa.secretName }}
{{- $_ := set $tls "clientCaFile" (printf "%s/%s" $paths.clientCa .Values.tls.clientCa.key) }}
{{- end }}
{{- $_ := set $listen "tls" $tls }}
{{- else if .Values.tls.clientCa.secretName }}
{{- fail "tls.clientCa needs tls.secretName: mutual TLS is only possible on an HTTPS listener" }}
{{- end }}

{{- $cred := .Values.keystone.credentials }}
{{- $service := dict }}
{{- if eq $cred.type "password" }}
{{- $_ := set $service "password" "${GATEWAY_PASSWORD}" }}
{{- range $k := list "username" "userId" "userDomainName" "userDomainId" "projectName" "projectId" "projectDomainName" "projectDomainId" }}
{{- if index $cred $k }}{{ $_ := set $service $k (index $cred $k) }}{{ end }}
{{- end }}
{{- else if eq $cred.type "applicationCredential" }}
{{- $_ := set $service "applicationCredentialId" (required "keystone.credentials.applicationCredentialId is required with type applicationCredential" $cred.applicationCredentialId) }}
{{- $_ := set $service "applicationCredentialSecret" "${GATEWAY_APP_CRED_SECRET}" }}
{{- else }}
{{- fail (printf "keystone.credentials.type must be password or applicationCredential, not %q" $cred.type) }}
{{- end }}
{{- $keystone := dict "authUrl" (required "keystone.authUrl is required" .Values.keystone.authUrl) "serviceCredentials" $service }}
{{- range $k, $v := $c.keystone }}{{ $_ := set $keystone $k $v }}{{ end }}
{{- if or .Values.keystone.ca.secretName .Values.keystone.ca.configMapName }}
{{- $_ := set $keystone "caFile" (printf "%s/%s" $paths.keystoneCa .Values.keystone.ca.key) }}
{{- end }}

{{- $imp := $c.k8s.impersonation }}
{{- $impersonation := dict "userPrefix" $imp.userPrefix "groupPrefix" $imp.groupPrefix "extras" $imp.extras }}
{{- if $imp.domainScopeGroups }}{{ $_ := set $impersonation "domainScopeGroups" $imp.domainScopeGroups }}{{ end }}
{{- if $imp.systemScopeGroups }}{{ $_ := set $impersonation "systemScopeGroups" $imp.systemScopeGroups }}{{ end }}
{{- if .Values.flowControl.enabled }}{{ $_ := set $impersonation "tenantGroup" .Values.flowControl.tenantGroup }}{{ end }}
{{- $k8s := dict "impersonation" $impersonation "http2Watches" $c.k8s.http2Watches "http2Requests" (eq $c.k8s.http2Requests true) "responseHeaderTimeoutSeconds" $c.k8s.responseHeaderTimeoutSeconds }}
{{- if $c.k8s.rateLimit }}{{ $_ := set $k8s "rateLimit" $c.k8s.rateLimit }}{{ end }}
{{- $t := $c.k8s.tenancy }}
{{- if $t.enabled }}
{{- $tenancy := dict "namespaceTemplate" $t.namespaceTemplate "roleBindings" ($t.roleBindings | default dict) "recheckSeconds" $t.recheckSeconds "podSecurity" (dict "level" $t.podSecurity.level) }}
{{- $_ := set $tenancy "alwaysPullImages" (ne $t.alwaysPullImages false) }}
{{- $_ := set $tenancy "sharedImages" ($t.sharedImages | default list) }}
{{- $_ := set $tenancy "subPath" ($t.subPath | default "auto") }}
{{- $_ := set $tenancy "bindingSubjects" ($t.bindingSubjects | default list) }}
{{- if $t.resourceQuota }}{{ $_ := set $tenancy "resourceQuota" $t.resourceQuota }}{{ end }}
{{- if $t.limitRange }}{{ $_ := set $tenancy "limitRange" $t.limitRange }}{{ end }}
{{- $_ := set $k8s "tenancy" $tenancy }}
{{- end }}
{{- /* Several clusters: each with a kubeconfigSecret is another cluster (its Secret mounted under paths.clusters),
     the one without is the cluster the gateway runs in (its service account). */}}
{{- $clusters := list }}
{{- $local := 0 }}
{{- range $i, $cl := ($c.k8s.clusters | default list) }}
{{- $name := required (printf "config.k8s.clusters[%d].name is required" $i) $cl.name }}
{{- $entry := dict "name" $name }}
{{- if $cl.kubeconfigSecret }}
{{- $_ := required (printf "config.k8s.clusters[%d].kubeconfigSecret.name is required" $i) $cl.kubeconfigSecret.name }}
{{- $_ := set $entry "kubeconfig" (printf "%s/%s/%s" $paths.clusters $name ($cl.kubeconfigSecret.key | default "kubeconfig")) }}
{{- else }}
{{- $local = add1 $local }}
{{- end }}
{{- range $k := list "context" "projectTags" "responseHeaderTimeoutSeconds" "http2Watches" }}
{{- if hasKey $cl $k }}{{ $_ := set $entry $k (index $cl $k) }}{{ end }}
{{- end }}
{{- if $cl.tenancy }}
{{- if not $t.enabled }}{{ fail (printf "config.k8s.clusters[%d].tenancy changes config.k8s.tenancy for one cluster, but config.k8s.tenancy.enabled is false" $i) }}{{ end }}
{{- $_ := set $entry "tenancy" $cl.tenancy }}
{{- end }}
{{- $clusters = append $clusters $entry }}
{{- end }}
{{- if gt $local 1 }}
{{- fail "config.k8s.clusters: only one cluster may have no kubeconfigSecret (the cluster the gateway runs in, reached with its service account)" }}
{{- end }}
{{- if $clusters }}{{ $_ := set $k8s "clusters" $clusters }}{{ end }}

{{- $audit := dict "destination" $c.audit.destination }}
{{- if eq $c.audit.destination "file" }}
{{- $_ := set $audit "file" (required "config.audit.file is required with destination file" $c.audit.file) }}
{{- else if not (has $c.audit.destination (list "stdout" "off")) }}
{{- fail (printf "config.audit.destination must be stdout, file or off, not %q" $c.audit.destination) }}
{{- end }}

{{- $cfg := dict "listen" $listen "keystone" $keystone "k8s" $k8s "log" (dict "level" $c.log.level) "audit" $audit "shutdown" (dict "graceSeconds" $c.shutdown.graceSeconds) "sessions" (dict "idleTimeoutSeconds" $c.sessions.idleTimeoutSeconds) }}
{{- if $c.metrics.enabled }}
{{- $_ := set $cfg "metrics" (dict "host" $c.metrics.host "port" (int $c.metrics.port)) }}
{{- end }}

{{- $d := $c.docker }}
{{- if $d.enabled }}
{{- $docker := dict "host" $d.host "maxBodyBytes" (int $d.maxBodyBytes) "responseHeaderTimeoutSeconds" $d.responseHeaderTimeoutSeconds }}
{{- if $d.rateLimit }}{{ $_ := set $docker "rateLimit" $d.rateLimit }}{{ end }}
{{- if not (hasPrefix "tcp://" $d.host) }}
{{- fail "config.docker.host must be tcp://host:port in a pod (a unix socket would need a hostPath mount)" }}
{{- end }}
{{- if $d.tlsSecret }}
{{- $_ := set $docker "tls" (dict "caFile" (printf "%s/%s" $paths.docker $d.caKey) "certFile" (printf "%s/%s" $paths.docker $d.certKey) "keyFile" (printf "%s/%s" $paths.docker $d.keyKey)) }}
{{- end }}
{{- if $d.limits }}{{ $_ := set $docker "limits" $d.limits }}{{ end }}
{{- if $d.roles }}{{ $_ := set $docker "roles" $d.roles }}{{ end }}
{{- if $d.allowedRegistries }}{{ $_ := set $docker "allowedRegistries" $d.allowedRegistries }}{{ end }}
{{- if $d.sharedImages }}{{ $_ := set $docker "sharedImages" $d.sharedImages }}{{ end }}
{{- $_ := set $docker "projectNetworks" (ne $d.projectNetworks false) }}
{{- $_ := set $cfg "docker" $docker }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The gateway's rights on a cluster (the ClusterRole's rules): impersonation, and with tenancy exactly the calls its
tenant provisioning makes (src/k8s/tenancy.ts) and `bind` on the ClusterRoles of that cluster's role mapping.
Params: root (the chart's context), roleBindings (the cluster's Keystone role -> ClusterRole map).
*/}}
{{- define "zun-gateway.clusterRoleRules" -}}
{{- $root := .root }}
- apiGroups: [""]
  resources: [users, groups]
  verbs: [impersonate]
{{- if $root.Values.config.k8s.impersonation.extras }}
- apiGroups: [authentication.k8s.io]
  resources:
  - userextras/keystone-user-id
  - userextras/keystone-project-id
  - userextras/keystone-project-name
  - userextras/keystone-domain-id
  - userextras/keystone-scope
  verbs: [impersonate]
{{- end }}
{{- if $root.Values.config.k8s.tenancy.enabled }}
{{- /* patch: labels added to namespaces made before them (the pod security level); list, watch: the project's own
     namespaces for `kubectl get namespaces`, selected by the project label (src/k8s/tenant-views.ts). */}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [list, create, delete]
{{- /* An empty resourceNames would allow binding every ClusterRole (cluster-admin too): no mapping, no bind rule. */}}
{{- $bindable := values (.roleBindings | default dict) | uniq | sortAlpha }}
{{- if $bindable }}
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames:
  {{- range $bindable }}
  - {{ . | quote }}
  {{- end }}
{{- end }}
- apiGroups: [""]
  resources: [resourcequotas, limitranges]
  verbs: [get, create, update]
{{- end }}
{{- end }}

{{/* A cluster of config.k8s.clusters by name (as YAML; "" when there is none of that name). */}}
{{- define "zun-gateway.clusterNamed" -}}
{{- $found := dict }}
{{- range (.root.Values.config.k8s.clusters | default list) }}
{{- if eq (toString .name) $.name }}{{ $found = . }}{{ end }}
{{- end }}
{{- if $found }}{{ toYaml $found }}{{ end }}
{{- end }}

{{/* A cluster's role mapping (YAML): its own tenancy.roleBindings, else config.k8s.tenancy.roleBindings. */}}
{{- define "zun-gateway.roleBindingsOf" -}}
{{- $own := dig "tenancy" "roleBindings" nil (.cluster | default dict) }}
{{- if kindIs "map" $own }}{{ toYaml $own }}{{ else }}{{ toYaml (.root.Values.config.k8s.tenancy.roleBindings | default dict) }}{{ end }}
{{- end }}

{{/* The role mapping on the cluster the gateway runs in: the cluster of config.k8s.clusters without kubeconfigSecret, if any. */}}
{{- define "zun-gateway.localRoleBindings" -}}
{{- $local := dict }}
{{- range (.Values.config.k8s.clusters | default list) }}
{{- if not .kubeconfigSecret }}{{ $local = . }}{{ end }}
{{- end }}
{{- include "zun-gateway.roleBindingsOf" (dict "root" . "cluster" $local) }}
{{- end }}

{{/*
The name of the cluster the gateway runs in when config.k8s.clusters lists several (the item without
kubeconfigSecret); "" when it lists none such or config.k8s.clusters is empty.
*/}}
{{- define "zun-gateway.localClusterName" -}}
{{- range (.Values.config.k8s.clusters | default list) }}
{{- if not .kubeconfigSecret }}{{ .name }}{{ end }}
{{- end }}
{{- end }}

{{/*
Where the apiserver of the cluster the gateway runs in calls its validating webhook (the mutating one is below it,
/image-pull-policy): each cluster has its own path, so that the gateway judges with that cluster's facts (its version,
its namespaces' owners). Without config.k8s.clusters: /admission/v1/pods. "" when config.k8s.clusters has no cluster
the gateway runs in (nothing of the gateway's in this cluster to guard).
*/}}
{{- define "zun-gateway.localAdmissionPath" -}}
{{- if not .Values.config.k8s.clusters }}/admission/v1/pods
{{- else }}{{ with include "zun-gateway.localClusterName" . }}{{ printf "/admission/v1/clusters/%s/pods" . }}{{ end }}
{{- end }}
{{- end }}
