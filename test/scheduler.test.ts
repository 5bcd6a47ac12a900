// The scheduler's admission policy, as a pure function over the queue and the budgets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitCount, type SchedulerBudget, type WaitingRequest } from '../src/engine/scheduler.ts';

const budget = (over: Partial<SchedulerBudget> = {}): SchedulerBudget => ({
  running: 0,
  runningLongest: 0,
  growthHeadroom: 0,
  maxRunning: 8,
  prefillTokens: 100,
  maxGroupColumns: 1000,
  kvBudgetBytes: 1e12,
  kvBytes: (rows, columns) => rows * columns,
  ...over,
});
const req = (newTokens: number, promptTokens = newTokens): WaitingRequest => ({ newTokens, promptTokens });

test('packs prompts in FIFO order up to the token budget', () => {
  assert.equal(admitCount([req(30), req(30), req(30), req(30)], budget()), 3);
  // Never overtakes: a small request behind one that does not fit waits too.
  assert.equal(admitCount([req(60), req(60), req(5)], budget()), 1);
});

test('a prompt longer than the budget runs alone (in chunks)', () => {
  assert.equal(admitCount([req(500), req(5)], budget()), 1);
  assert.equal(admitCount([req(5), req(500)], budget()), 1);
});

test('cached prefix tokens cost columns, not prefill tokens', () => {
  assert.equal(admitCount([req(10, 600), req(10, 600)], budget({ maxGroupColumns: 1000 })), 1);
  assert.equal(admitCount([req(10, 400), req(10, 400)], budget({ maxGroupColumns: 1000 })), 2);
});

test('the batch size bounds running plus admitted', () => {
  assert.equal(admitCount([req(1), req(1), req(1)], budget({ running: 7 })), 1);
  assert.equal(admitCount([req(1)], budget({ running: 8 })), 0);
});

test('memory: admission stops at the KV budget, but the first request always starts on an idle engine', () => {
  const b = budget({ kvBudgetBytes: 1000, growthHeadroom: 100 });
  // 2 rows × (300 + 100) = 800 fits; 3 rows × 400 = 1200 does not.
  assert.equal(admitCount([req(50, 300), req(50, 300), req(50, 300)], b), 2);
  assert.equal(admitCount([req(50, 5000)], b), 1);
  assert.equal(admitCount([req(50, 5000)], { ...b, running: 1, runningLongest: 10 }), 0);
});
