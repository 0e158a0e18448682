// The stored form of a verdict cache record (cache-record-codec.ts): postscreen's
// `pregreet;dnsbl;pipelining;non_smtp_command;bare_newline` expiries (ms). A value anyone
// could have written to Redis is decoded only when it has exactly that shape and no expiry
// beyond what a configured TTL allows; everything else is no record (a miss, never a PASS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCacheRecord, encodeCacheRecord } from '../../src/screen/cache-record-codec.js';

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const MAX = 30 * DAY;

test('a record round-trips in postscreen order, 0 for a test never passed', () => {
  const record = { pregreet: NOW + DAY, dnsbl: NOW + 3_600_000, bare_newline: NOW + 30 * DAY };
  const text = encodeCacheRecord(record);
  assert.equal(text, `${NOW + DAY};${NOW + 3_600_000};0;0;${NOW + 30 * DAY}`);
  assert.deepEqual(decodeCacheRecord(text, NOW, MAX), record);
});

const hostile: { name: string; value: unknown }[] = [
  { name: 'empty', value: '' },
  { name: 'not a string', value: 42 },
  { name: 'JSON', value: JSON.stringify({ pregreet: NOW + DAY, dnsbl: NOW + DAY }) },
  { name: 'four fields', value: `${NOW + DAY};${NOW + DAY};0;0` },
  { name: 'six fields', value: `${NOW + DAY};${NOW + DAY};0;0;0;0` },
  { name: 'a negative expiry', value: `-1;${NOW + DAY};0;0;0` },
  { name: 'a plus sign', value: `+${NOW + DAY};${NOW + DAY};0;0;0` },
  { name: 'an exponent', value: `1e13;${NOW + DAY};0;0;0` },
  { name: 'a fraction', value: `${NOW + DAY}.5;${NOW + DAY};0;0;0` },
  { name: 'hex', value: `0x1;${NOW + DAY};0;0;0` },
  { name: 'white space', value: ` ${NOW + DAY};${NOW + DAY};0;0;0` },
  { name: 'a leading zero', value: `0${NOW + DAY};${NOW + DAY};0;0;0` },
  { name: 'an empty field', value: `;${NOW + DAY};0;0;0` },
  { name: 'sixteen digits', value: `1000000000000000;${NOW + DAY};0;0;0` },
  { name: 'an expiry forged far into the future', value: `${NOW + MAX + 1};${NOW + DAY};0;0;0` },
  { name: 'Infinity', value: `Infinity;${NOW + DAY};0;0;0` },
  { name: 'NaN', value: `NaN;${NOW + DAY};0;0;0` },
  { name: 'over 100 bytes', value: `${NOW + DAY};${NOW + DAY};0;0;0${' '.repeat(100)}` },
  { name: 'binary', value: '\u0000\uffff;\u0000;0;0;0' },
  { name: 'every field 0 (nothing passed)', value: '0;0;0;0;0' },
];
for (const { name, value } of hostile) {
  test(`a hostile value is no record: ${name}`, () => {
    assert.equal(decodeCacheRecord(value, NOW, MAX), undefined);
  });
}
