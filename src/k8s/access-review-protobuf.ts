/**
 * kubectl 1.32+ sends `auth can-i` as protobuf (`Content-Type: application/vnd.kubernetes.protobuf`): the gateway reads
 * the few fields of a SelfSubjectAccessReview it answers itself (tenant-views.ts) from the wire format, and nothing
 * else. Field numbers from k8s.io/apimachinery runtime/generated.proto (Unknown, TypeMeta) and k8s.io/api
 * authorization/v1/generated.proto (SelfSubjectAccessReview, its spec, ResourceAttributes).
 */

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from('k8s\0', 'latin1');

/** The length-delimited fields of one message by field number (others skipped); undefined when it is not well formed. */
function lengthDelimitedFields(buf: Buffer): Map<number, Buffer[]> | undefined {
  const fields = new Map<number, Buffer[]>();
  let at = 0;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= buf.length) return undefined;
      const byte = buf[at++] as number;
      if (shift < 49) value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return undefined;
  };
  while (at < buf.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const wireType = key % 8;
    const field = Math.floor(key / 8);
    if (wireType === 0) {
      if (varint() === undefined) return undefined;
    } else if (wireType === 1 || wireType === 5) {
      at += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      const length = varint();
      if (length === undefined || at + length > buf.length) return undefined;
      const list = fields.get(field) ?? [];
      list.push(buf.subarray(at, at + length));
      fields.set(field, list);
      at += length;
    } else return undefined;
  }
  return at === buf.length ? fields : undefined;
}

/** The last occurrence wins, as protobuf merges a repeated non-repeated field. */
const last = (fields: Map<number, Buffer[]> | undefined, n: number): Buffer | undefined => fields?.get(n)?.at(-1);

const ATTRIBUTES = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'] as const;

/**
 * A protobuf SelfSubjectAccessReview as its JSON form would read (`{spec: {resourceAttributes: {...}}}`, string
 * attributes only); undefined when the body is not one, or asks about a non-resource URL.
 */
export function accessReviewFromProtobuf(body: Buffer): { spec: { resourceAttributes: Record<string, string> } } | undefined {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const unknown = lengthDelimitedFields(body.subarray(MAGIC.length));
  const typeMeta = lengthDelimitedFields(last(unknown, 1) ?? Buffer.alloc(0));
  if (last(typeMeta, 1)?.toString('utf8') !== 'authorization.k8s.io/v1' || last(typeMeta, 2)?.toString('utf8') !== 'SelfSubjectAccessReview') return undefined;
  const review = lengthDelimitedFields(last(unknown, 2) ?? Buffer.alloc(0));
  const spec = lengthDelimitedFields(last(review, 2) ?? Buffer.alloc(0));
  const attributesBytes = last(spec, 1);
  if (attributesBytes === undefined) return undefined;
  const attributes = lengthDelimitedFields(attributesBytes);
  if (attributes === undefined) return undefined;
  const resourceAttributes: Record<string, string> = {};
  ATTRIBUTES.forEach((name, i) => {
    const value = last(attributes, i + 1)?.toString('utf8');
    if (value !== undefined && value !== '') resourceAttributes[name] = value;
  });
  return { spec: { resourceAttributes } };
}
