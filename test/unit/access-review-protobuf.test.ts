import assert from 'node:assert/strict';
import { accessReviewFromProtobuf } from '../../src/k8s/access-review-protobuf.js';

/** What kubectl 1.32 sent for `kubectl auth can-i get namespaces/kube-system` (captured with -v=10). */
const KUBECTL_1_32_CAN_I = Buffer.from(
  '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f76311217' +
    '53656c665375626a6563744163636573735265766965771' +
    '24d0a100a0012001a0022002a00320038004200122f0a2d0a0764656661756c7412036765741a00' +
    '22002a0a6e616d65737061636573320' +
    '03a0b6b7562652d73797374656d1a080800120' +
    '01a0020001a002200',
  'hex',
);

describe('a SelfSubjectAccessReview in protobuf (kubectl 1.32+ auth can-i)', () => {
  it("reads the resource attributes of kubectl's own bytes, skipping varint fields and empty strings", () => {
    assert.deepEqual(accessReviewFromProtobuf(KUBECTL_1_32_CAN_I), {
      spec: { resourceAttributes: { namespace: 'default', verb: 'get', resource: 'namespaces', name: 'kube-system' } },
    });
  });

  it('anything else is not one: JSON, a truncated body, another kind, no magic', () => {
    assert.equal(accessReviewFromProtobuf(Buffer.from('{"spec":{"resourceAttributes":{"verb":"list"}}}')), undefined);
    // Up to the end of the review (the trailing empty contentEncoding and contentType fields may go: still well formed).
    const reviewEnd = KUBECTL_1_32_CAN_I.length - 4;
    for (let cut = 4; cut < reviewEnd; cut += 1) {
      assert.equal(accessReviewFromProtobuf(KUBECTL_1_32_CAN_I.subarray(0, cut)), undefined, `cut at ${cut}`);
    }
    const otherKind = Buffer.from(KUBECTL_1_32_CAN_I);
    otherKind.write('X', otherKind.indexOf('SelfSubject'), 'latin1');
    assert.equal(accessReviewFromProtobuf(otherKind), undefined);
    assert.equal(accessReviewFromProtobuf(KUBECTL_1_32_CAN_I.subarray(4)), undefined);
  });
});
