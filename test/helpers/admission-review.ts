/** An admission.k8s.io/v1 AdmissionReview for a pod CREATE in os-alpha; `extra` replaces or adds request fields. */
export function admissionReview(object: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'os-alpha',
      operation: 'CREATE',
      object,
      ...extra,
    },
  };
}

/** The request fields that make an admissionReview one of a Service. */
export const SERVICE_REQUEST = {
  kind: { group: '', version: 'v1', kind: 'Service' },
  resource: { group: '', version: 'v1', resource: 'services' },
} as const;
