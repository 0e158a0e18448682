import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReceivedHeader, formatRfc5322Date, type ReceivedInput } from '../../src/policy/received-header.js';

// 2020-03-03T09:00:00Z, a Tuesday.
const time = Date.UTC(2020, 2, 3, 9, 0, 0);
const base: ReceivedInput = {
  helo: 'client.example',
  clientAddress: '192.0.2.10',
  myhostname: 'mx1.example.net',
  mailName: 'mxscreen',
  esmtp: true,
  tls: false,
  queueId: '4ABCDEF012',
  recipients: ['joe@example.com'],
  time,
  utcOffsetMinutes: 0,
};

const cases: { name: string; input: Partial<ReceivedInput>; want: string }[] = [
  {
    name: 'one recipient: for clause',
    input: {},
    want:
      'Received: from client.example (unknown [192.0.2.10])\r\n' +
      '\tby mx1.example.net (mxscreen) with ESMTP id 4ABCDEF012\r\n' +
      '\tfor <joe@example.com>; Tue, 3 Mar 2020 09:00:00 +0000\r\n',
  },
  {
    name: 'two recipients: no for clause, date on its own line',
    input: { recipients: ['a@example.com', 'b@example.com'] },
    want:
      'Received: from client.example (unknown [192.0.2.10])\r\n' +
      '\tby mx1.example.net (mxscreen) with ESMTP id 4ABCDEF012;\r\n' +
      '\tTue, 3 Mar 2020 09:00:00 +0000\r\n',
  },
  {
    name: 'TLS: ESMTPS',
    input: { tls: true },
    want:
      'Received: from client.example (unknown [192.0.2.10])\r\n' +
      '\tby mx1.example.net (mxscreen) with ESMTPS id 4ABCDEF012\r\n' +
      '\tfor <joe@example.com>; Tue, 3 Mar 2020 09:00:00 +0000\r\n',
  },
  {
    name: 'HELO: SMTP',
    input: { esmtp: false },
    want:
      'Received: from client.example (unknown [192.0.2.10])\r\n' +
      '\tby mx1.example.net (mxscreen) with SMTP id 4ABCDEF012\r\n' +
      '\tfor <joe@example.com>; Tue, 3 Mar 2020 09:00:00 +0000\r\n',
  },
  {
    name: 'IPv6 client, known name, local time east of UTC',
    input: { clientAddress: '2001:db8::1', clientName: 'client.example', utcOffsetMinutes: 60 },
    want:
      'Received: from client.example (client.example [IPv6:2001:db8::1])\r\n' +
      '\tby mx1.example.net (mxscreen) with ESMTP id 4ABCDEF012\r\n' +
      '\tfor <joe@example.com>; Tue, 3 Mar 2020 10:00:00 +0100\r\n',
  },
  {
    name: 'no HELO: the client name stands in',
    input: { helo: undefined },
    want:
      'Received: from unknown (unknown [192.0.2.10])\r\n' +
      '\tby mx1.example.net (mxscreen) with ESMTP id 4ABCDEF012\r\n' +
      '\tfor <joe@example.com>; Tue, 3 Mar 2020 09:00:00 +0000\r\n',
  },
];

for (const { name, input, want } of cases) {
  test(`formatReceivedHeader: ${name}`, () => {
    assert.equal(formatReceivedHeader({ ...base, ...input }), want);
  });
}

const dates: { name: string; input: { time: number; offset: number }; want: string }[] = [
  { name: 'UTC', input: { time, offset: 0 }, want: 'Tue, 3 Mar 2020 09:00:00 +0000' },
  { name: 'west of UTC crosses midnight back', input: { time: Date.UTC(2020, 0, 1, 2, 5, 9), offset: -330 }, want: 'Tue, 31 Dec 2019 20:35:09 -0530' },
  { name: 'east of UTC crosses midnight forward', input: { time: Date.UTC(2021, 11, 31, 23, 30, 0), offset: 120 }, want: 'Sat, 1 Jan 2022 01:30:00 +0200' },
];

for (const { name, input, want } of dates) {
  test(`formatRfc5322Date: ${name}`, () => {
    assert.equal(formatRfc5322Date(input.time, input.offset), want);
  });
}
