// A client no one here wrote: protobufjs (loading xxim.proto, written from the reference's
// definitions) over the `ws` package, and @grpc/grpc-js for the push API, against pushgate.
// Prints "ok" when every step matched; exits non-zero with the reason otherwise.
//
//   node client.mjs PORT TOKEN API_KEY   (user "js", platform "web", device "js1")
import protobuf from 'protobufjs';
import WebSocket from 'ws';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const [port, token, apiKey] = process.argv.slice(2);
const protoPath = fileURLToPath(new URL('./xxim.proto', import.meta.url));
const root = await protobuf.load(protoPath);
const T = (name) => root.lookupType(`pb.${name}`);
const encode = (name, value) => T(name).encode(T(name).fromObject(value)).finish();
const decode = (name, bytes) => T(name).toObject(T(name).decode(bytes), { longs: String, defaults: true });

// The message every test step agrees on; the Rust side checks it with pushgate's prost types.
export const msg = {
  clientMsgId: 'c1', serverMsgId: 's1', clientTime: '1', serverTime: '2',
  senderId: 'js', senderInfo: Buffer.from([1, 2]), convId: 'single:js-x', atUsers: ['x', 'all'],
  contentType: 11, content: Buffer.from('hello'), seq: '9',
  options: { storageForServer: true, offlinePush: true, updateUnreadCount: true },
  offlinePush: { title: 't', content: 'c', payload: 'p' }, ext: Buffer.from([7]),
};

const query = `userId=js&token=${token}&platform=web&deviceId=js1&deviceModel=node&osVersion=20` +
  '&appVersion=1&language=en&networkUsed=lan';
const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?${query}`);
const inbox = [];
const waiters = [];
ws.on('message', (data, isBinary) => {
  const item = { data, isBinary };
  const waiter = waiters.shift();
  if (waiter) waiter(item); else inbox.push(item);
});
ws.on('close', (code, reason) => {
  const item = { close: code, reason: reason.toString() };
  const waiter = waiters.shift();
  if (waiter) waiter(item); else inbox.push(item);
});
const next = () => new Promise((resolve, reject) => {
  if (inbox.length) return resolve(inbox.shift());
  const timer = setTimeout(() => reject(new Error('no frame within 15 s')), 15000);
  waiters.push((item) => { clearTimeout(timer); resolve(item); });
});
const nextPush = async () => {
  const item = await next();
  assert.ok(item.isBinary, `expected a binary frame, got ${JSON.stringify(item)}`);
  return decode('PushBody', item.data);
};
const request = (event, reqId, data) => ws.send(encode('RequestBody', { event, reqId, data }));
const response = async (reqId) => {
  const push = await nextPush();
  assert.equal(push.event, 2, 'PushResponseBody');
  const body = decode('ResponseBody', push.data);
  assert.equal(body.reqId, reqId);
  return body;
};

await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
const hello = await next();
assert.equal(hello.isBinary, false);
assert.equal(hello.data.toString(), 'connected');

// A request routed to the mock backend: SendMsgList with a full MsgData.
request(0, 'js-send', encode('SendMsgListReq', { msgDataList: [msg] }));
assert.equal((await response('js-send')).code, 0);
request(100, 'js-custom', encode('CustomRequestBody', { method: '/v1/test/echo', data: Buffer.alloc(0) }));
assert.equal((await response('js-custom')).code, 0);

// The push API over gRPC: SendMsg to this very connection.
const definition = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true });
const pb = grpc.loadPackageDefinition(definition).pb;
const conn = new pb.connService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${apiKey}`);
const sent = await new Promise((resolve, reject) => conn.SendMsg(
  { getUserConnReq: { userIds: ['js', 'ghost'] }, event: 'PushMsgDataList', data: encode('MsgDataList', { msgDataList: [msg] }) },
  metadata, (err, reply) => (err ? reject(err) : resolve(reply))));
assert.deepEqual(sent.successConnParams.map((p) => p.deviceId), ['js1']);
assert.deepEqual(sent.failedConnParams.map((p) => p.userId), ['ghost']);
const pushed = await nextPush();
assert.equal(pushed.event, 0, 'PushMsgDataList');
const list = decode('MsgDataList', pushed.data);
assert.equal(list.msgDataList[0].convId, 'single:js-x');
assert.deepEqual(list.msgDataList[0].atUsers, ['x', 'all']);
conn.close();

// A notice through the JSON API, pushed, then acknowledged with event 3.
const createTime = String(Date.now() + 60000);
const added = await fetch(`http://127.0.0.1:${port}/im/sendNoticeData`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
  body: JSON.stringify({ userId: 'js', noticeData: { convId: 'notice:js', noticeId: 'n1', title: 'hello',
    contentType: 7, content: Buffer.from('payload').toString('base64'), createTime } }),
});
assert.equal(added.status, 200, await added.text());
const noticePush = await nextPush();
assert.equal(noticePush.event, 1, 'PushNoticeDataList');
const notices = decode('NoticeDataList', noticePush.data).noticeDataList;
assert.equal(notices.length, 1);
assert.equal(notices[0].noticeId, 'n1');
assert.equal(notices[0].title, 'hello');
assert.equal(notices[0].contentType, 7);
assert.equal(notices[0].createTime, createTime);
assert.equal(Buffer.from(notices[0].content).toString(), 'payload');
request(3, 'js-ack', encode('AckNoticeDataReq', { noticeId: 'n1', convId: 'notice:js' }));
assert.equal((await response('js-ack')).code, 0);

ws.close(1000);
console.log('ok');
process.exit(0);
