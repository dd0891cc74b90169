"""Issue 8: no stranger in. BLE LE Secure Connections bonding, encrypted
characteristics, pairing mode, forgetting bonds, replay-proof commands.

Two levels:
* the firmware under MicroPython with the fake `bluetooth` (NimBLE's rules:
  *_ENCRYPTED flags refuse unencrypted reads/writes; keys go through
  _IRQ_GET_SECRET/_IRQ_SET_SECRET; a stack that lets a write through anyway
  is simulated with enforce=False) - including a reboot on the same flash;
* the real firmware on the emulated radio (Bumble's Security Manager, the
  twin's key store kept by the firmware) driven by bleak.
"""

from __future__ import annotations

import asyncio

import bleak
import pytest

import spinemon_protocol as P
from mpy_runner import FIRMWARE_DIR, PROTOCOL_DIR, ROOT, micropython_binary, require
from mpy_runner import run as mpy_run
from spinemon.emulated_ble import BumbleClient, EmulatedGATTError, EmulatedRadio
from spinemon.emulated_ble.firmware_bridge import FirmwareBridge, FirmwareOptions

FAKES_DIR = ROOT / "tests" / "firmware" / "fakes"

FIRMWARE_SCENARIO = r"""
import spinemon_protocol as sp
from fake_board import make_hardware
from config_store import ConfigStore
import main

OWNER = b"\x11\x22\x33\x44\x55\x66"
STRANGER = b"\xde\xad\xbe\xef\x00\x01"

def boot(central_keys=None):
    hw = make_hardware(two=False)
    if central_keys is not None:
        hw.radio.central_keys = central_keys   # the owner's phone keeps its bond
    dev = main.build_device(hw, ConfigStore(CFG + "/config.json", CFG + "/boot.txt"))
    dev.boot()
    return hw, dev

hw, dev = boot()
r = hw.radio
U = hw.uuid
H_CMD = r.handle_of(U(sp.COMMAND_CHAR_UUID))
H_STATUS = r.handle_of(U(sp.STATUS_CHAR_UUID))

def step(ms=10):
    hw.ticks.advance_ms(ms)
    dev.step()

def status():
    return sp.decode(dev.status_frame())

def replies():
    return [sp.decode(f) for f in r.notified(H_STATUS)]

def resync(conn=64):
    # the host's first command on a wearable without a counter floor: GET_STATUS,
    # then continue from the STATUS's last_counter (a fresh floor the device drew)
    n = len(replies())
    r.central_write(H_CMD, sp.encode_command(1, sp.OP_GET_STATUS), conn); step()
    got = replies()[n:]
    assert [x.kind for x in got] == [sp.T_ACK, sp.T_STATUS], [x.kind for x in got]
    return got[1].last_counter

# flags as registered
flags = dict((r.chars[h][0], r.chars[h][1]) for h in r.chars)
assert flags[U(sp.COMMAND_CHAR_UUID)] & 0x1000 and flags[U(sp.STATUS_CHAR_UUID)] & 0x0200 and flags[U(sp.STREAM_CHAR_UUID)] & 0x0200
assert r.config("bond") and r.config("le_secure")

# a new wearable (no bonds) is in pairing mode after boot
assert status().state & sp.ST_PAIRING and not status().state & sp.ST_BONDED

# 1. a stranger that does not pair: the stack refuses, and a write it lets through is ignored
r.central_connect(70, STRANGER, pair=False); step()
assert r.central_write(H_CMD, sp.encode_command(1, sp.OP_HAPTIC, (1, 100, 0, 255)), 70) == 0x0F
assert r.central_read(H_STATUS, 70)[0] == 0x0F
assert r.central_write(H_CMD, sp.encode_command(2, sp.OP_HAPTIC, (1, 100, 0, 255)), 70, enforce=False) == 0
step()
assert dev.ble.writes_refused == 1 and replies() == [] and hw.pwm.on_intervals() == []
assert not status().state & sp.ST_CONNECTED
# it is dropped after the grace period
for _ in range(310):
    step(100)
assert 70 not in r.connections and dev.ble.untrusted_dropped == 1
print("RESULT stranger_unpaired=refused")

# 2. the owner pairs (pairing mode at first boot), resyncs the counter (a new
#    wearable has no floor: everything but GET_STATUS is refused), commands work
r.central_connect(64, OWNER); r.exchange_mtu(64); step()
assert dev.ble.trusted() and status().state & sp.ST_BONDED and not status().state & sp.ST_PAIRING
r.central_write(H_CMD, sp.encode_command(1, sp.OP_HAPTIC, (1, 100, 0, 255)), 64); step()
assert replies()[-1].kind == sp.T_ERROR and replies()[-1].code == sp.E_STALE and hw.pwm.on_intervals() == []
F = resync()
n0 = len(replies())
sent = []
for c in range(F + 1, F + 6):
    f = sp.encode_command(c, sp.OP_TIME_SYNC)
    sent.append(f)
    assert r.central_write(H_CMD, f, 64) == 0
    step()
assert [x.kind for x in replies()[n0:]] == [sp.T_ACK] * 5
r.central_disconnect(64, OWNER); step()

# 3. a stranger that pairs outside pairing mode: its keys are not stored and it is dropped
r.central_connect(71, STRANGER); step()
assert (2, False) in r.store_results and dev.ble.bonds_refused >= 1
assert 71 not in r.connections and dev.ble.bonds.bonds() == 1
print("RESULT stranger_pairing=refused")

# 4. replay on a new connection: stale
r.central_connect(64, OWNER); step()
assert dev.ble.trusted()
n = len(replies())
r.central_write(H_CMD, sent[2], 64); step()
r.central_write(H_CMD, sp.encode_command(F + 6, sp.OP_TIME_SYNC), 64); step()
new = replies()[n:]
assert new[0].kind == sp.T_ERROR and new[0].code == sp.E_STALE and new[0].counter == F + 3, new[0].kind
assert new[1].kind == sp.T_ACK and new[1].counter == F + 6
r.central_disconnect(64, OWNER); step()
print("RESULT replay_new_connection=stale")

# 5. reboot: the owner's bond survives, every old counter is stale, STATUS says where to resume
keys = r.central_keys
hw, dev = boot(keys)
r = hw.radio
r.central_connect(64, OWNER); step()
assert dev.ble.trusted(), "the bond survived the reboot"
st = status()
assert st.state & sp.ST_BONDED and not st.state & sp.ST_PAIRING
for f in sent + [sp.encode_command(F + 6, sp.OP_TIME_SYNC)]:
    r.central_write(H_CMD, f, 64); step()
assert all(x.kind == sp.T_ERROR and x.code == sp.E_STALE for x in replies())
assert sp.counter_is_newer(st.last_counter, F + 5)
r.central_write(H_CMD, sp.encode_command(st.last_counter + 1, sp.OP_TIME_SYNC), 64); step()
assert replies()[-1].kind == sp.T_ACK
print("RESULT replay_after_reboot=stale")

# 6. the counter is written sparingly
w0 = dev.counter_writes
c = st.last_counter + 1
for i in range(300):
    c += 1
    r.central_write(H_CMD, sp.encode_command(c, sp.OP_TIME_SYNC), 64); dev.pump_links()
assert replies()[-1].kind == sp.T_ACK
print("RESULT counter_writes_300=%d" % (dev.counter_writes - w0))
r.central_disconnect(64, OWNER); step()
assert ConfigStore(CFG + "/config.json", CFG + "/boot.txt").load_counter() == c, "saved on disconnect"

# 7. out-of-range and unknown parameters: ERROR frames, nothing done
r.central_connect(64, OWNER); step()
n = len(replies())
raw = bytearray(sp.encode_command(c + 1, sp.OP_SET_RATE, (100,)))
raw[7:9] = (5000).to_bytes(2, "little")
crc = sp.crc16(bytes(raw[:-2])); raw[-2] = crc & 0xFF; raw[-1] = crc >> 8
r.central_write(H_CMD, bytes(raw), 64); step()
bad = bytearray(sp.encode_command(c + 2, sp.OP_STOP)); bad[6] = 0x77
crc = sp.crc16(bytes(bad[:-2])); bad[-2] = crc & 0xFF; bad[-1] = crc >> 8
r.central_write(H_CMD, bytes(bad), 64); step()
e = replies()[n:]
assert [(x.kind, x.code) for x in e] == [(sp.T_ERROR, sp.E_RANGE), (sp.T_ERROR, sp.E_OPCODE)]
print("RESULT bad_params=refused")

# 8. button: held 3 s -> pairing mode (a second phone may bond); held 10 s -> every bond forgotten
r.central_disconnect(64, OWNER); step()
hw.button.value(0)
for _ in range(35):
    step(100)
assert status().state & sp.ST_PAIRING
hw.button.value(1)
for _ in range(5):
    step(100)
r.central_keys.pop(STRANGER, None)  # its half of the bond refused in step 3 is useless: it forgets it
r.central_connect(72, STRANGER); step()
assert dev.ble.trusted() and dev.ble.bonds.bonds() == 2, "a new phone bonds in pairing mode"
r.central_disconnect(72, STRANGER); step()
hw.button.value(0)
for _ in range(105):
    step(100)
hw.button.value(1); step(100)
assert dev.ble.bonds.bonds() == 0 and not status().state & sp.ST_BONDED
dev.ble.leave_pairing_mode()
r.central_connect(64, OWNER, pair=False); step()
assert r.central_pair(64) is False, "the forgotten bond no longer encrypts the link"
assert not dev.ble.trusted()
print("RESULT forget=ok")
"""


@pytest.mark.micropython
def test_firmware_refuses_strangers_and_replays_under_micropython(tmp_path):
    script = "CFG = %r\n" % str(tmp_path) + FIRMWARE_SCENARIO
    out = mpy_run(script, path=[PROTOCOL_DIR, FIRMWARE_DIR, FAKES_DIR]).stdout.decode()
    res = dict(line[7:].split("=", 1) for line in out.splitlines() if line.startswith("RESULT "))
    assert res["stranger_unpaired"] == "refused"
    assert res["stranger_pairing"] == "refused"
    assert res["replay_new_connection"] == "stale"
    assert res["replay_after_reboot"] == "stale"
    assert res["bad_params"] == "refused"
    assert res["forget"] == "ok"
    assert int(res["counter_writes_300"]) <= 300 // 64 + 1  # sparing flash writes


def options() -> FirmwareOptions:
    return FirmwareOptions(micropython=require(micropython_binary(), "micropython"), path=(PROTOCOL_DIR, FIRMWARE_DIR, FAKES_DIR))


class Inbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, _char, data) -> None:
        self.queue.put_nowait(bytes(data))

    async def answer(self, counter: int, timeout: float = 3.0):
        while True:
            obj = P.decode(await asyncio.wait_for(self.queue.get(), timeout))
            if isinstance(obj, (P.Ack, P.Error)) and obj.counter == counter:
                return obj


def test_over_the_emulated_radio_only_a_bonded_host_gets_in_and_replays_are_stale():
    async def main():
        async with EmulatedRadio() as radio:
            fw = await FirmwareBridge.start(radio, options())
            try:
                # an unpaired central: ATT refuses subscribing, STATUS reads and COMMAND writes
                async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0) as c:
                    for attempt in (
                        c.start_notify(P.STREAM_CHAR_UUID, lambda *_: None),
                        c.start_notify(P.STATUS_CHAR_UUID, lambda *_: None),
                        c.read_gatt_char(P.STATUS_CHAR_UUID),
                        c.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(1, P.OP_HAPTIC, (1, 100, 0, 255)), response=True),
                    ):
                        with pytest.raises(EmulatedGATTError) as e:
                            await attempt
                        assert e.value.code == 0x0F  # INSUFFICIENT_ENCRYPTION
                    battery = await c.read_gatt_char("00002a19-0000-1000-8000-00805f9b34fb")  # public by design
                    assert len(battery) == 1
                assert not any(i.event == "gatts_write" for i in fw.irqs) and fw.motor == []

                # the owner pairs (a new wearable is in pairing mode); the new
                # wearable has no counter floor: a command is refused until
                # the host's GET_STATUS has the device draw one; then commands work
                async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as c:
                    status = Inbox()
                    await c.start_notify(P.STATUS_CHAR_UUID, status)
                    await c.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(1, P.OP_HAPTIC, (1, 100, 0, 255)), response=True)
                    err = await status.answer(1)
                    assert isinstance(err, P.Error) and err.code == P.E_STALE
                    await c.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(2, P.OP_GET_STATUS), response=True)
                    assert isinstance(await status.answer(2), P.Ack)
                    fresh = P.decode(await asyncio.wait_for(status.queue.get(), 3.0))
                    assert isinstance(fresh, P.Status)
                    floor = fresh.last_counter
                    recorded = P.encode_command(P.wrap32(floor + 5), P.OP_TIME_SYNC)
                    await c.write_gatt_char(P.COMMAND_CHAR_UUID, recorded, response=True)
                    assert isinstance(await status.answer(P.wrap32(floor + 5)), P.Ack)
                assert any(i.event == "set_secret" for i in fw.irqs) and fw.keystore is not None and fw.keystore.refused == 0
                assert fw.motor == [], "the HAPTIC sent before the resync did nothing"

                # a new connection (re-encrypted with the bond): the recorded write is stale
                async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as c:
                    assert c._backend.encrypted
                    status = Inbox()
                    await c.start_notify(P.STATUS_CHAR_UUID, status)
                    await c.write_gatt_char(P.COMMAND_CHAR_UUID, recorded, response=True)
                    err = await status.answer(P.wrap32(floor + 5))
                    assert isinstance(err, P.Error) and err.code == P.E_STALE
                    await c.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(P.wrap32(floor + 6), P.OP_GET_STATUS), response=True)
                    assert isinstance(await status.answer(P.wrap32(floor + 6)), P.Ack)
                    for _ in range(30):
                        st = P.decode(bytes(await c.read_gatt_char(P.STATUS_CHAR_UUID)))
                        if st.state & P.ST_BONDED and st.state & P.ST_CONNECTED:
                            break
                        await asyncio.sleep(0.1)
                    assert st.state & P.ST_BONDED and not st.state & P.ST_PAIRING and st.last_counter == P.wrap32(floor + 6)
            finally:
                await fw.close()
            assert fw.returncode == 0 and fw.errors == []

    asyncio.run(asyncio.wait_for(main(), 30.0))
