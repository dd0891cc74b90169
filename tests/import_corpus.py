"""A corpus of real loggers' export formats, written from their public
documentation (column names, units, delimiters, time formats, header lines,
one file per sensor or not), filled with simulated motion: a lifter standing
still for 3 s, then three slow bends. No file is copied from anywhere; each
writer makes its own small file. docs/import.md lists the same formats with
the command a user copies.

``python -m tests.import_corpus DIR`` writes them all into DIR.
Each entry of :data:`FORMATS`: ``name -> writer(folder) -> (import argv, data rows)``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

G = 9.80665
START = datetime(2026, 12, 6, 10, 15, 30, 125000, tzinfo=timezone.utc)  # when the simulated session began


def motion(rate: float = 100.0, seconds: float = 15.0, seed: int = 0, t_shift: float = 0.0):
    """(t, acc m/s^2, gyr rad/s): still for 3 s, then slow hinges (the sensor pitches about y)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate + t_shift
    on = t > 3.0
    ang = np.where(on, 0.5 * (1 - np.cos(2 * np.pi * 0.25 * (t - 3.0))), 0.0)
    dang = np.where(on, 0.5 * 2 * np.pi * 0.25 * np.sin(2 * np.pi * 0.25 * (t - 3.0)), 0.0)
    acc = np.stack([G * np.cos(ang), np.zeros_like(t), G * np.sin(ang)], axis=1) + rng.normal(0, 0.03, (len(t), 3))
    gyr = np.stack([np.zeros_like(t), -dang, np.zeros_like(t)], axis=1) + rng.normal(0, 0.003, (len(t), 3))
    return t, acc, gyr


def _write(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n") -> None:
    path.write_bytes((newline.join(lines) + newline).encode(encoding))


def phyphox(d: Path):
    """phyphox (the 'Acceleration with g' and 'Gyroscope' experiments), exported as CSV
    (comma, decimal point): one file per sensor, quoted headers, seconds since start, E notation."""
    t, acc, _ = motion(rate=100.0, seed=1)
    tg, _, gyr = motion(rate=100.0, seed=1, t_shift=0.004)
    _write(d / "Accelerometer.csv", ['"Time (s)","X (m/s^2)","Y (m/s^2)","Z (m/s^2)"'] + [f"{t[i]:.9E},{acc[i,0]:.9E},{acc[i,1]:.9E},{acc[i,2]:.9E}" for i in range(len(t))])
    _write(d / "Gyroscope.csv", ['"Time (s)","X (rad/s)","Y (rad/s)","Z (rad/s)"'] + [f"{tg[i]:.9E},{gyr[i,0]:.9E},{gyr[i,1]:.9E},{gyr[i,2]:.9E}" for i in range(len(tg))])
    return [f"acc={d / 'Accelerometer.csv'}", f"gyr={d / 'Gyroscope.csv'}", "--columns", "t=1,x=2,y=3,z=4"], len(t)


def sensor_logger(d: Path):
    """Sensor Logger (Android/iOS), zipped CSV export: one file per sensor, columns
    time (Unix ns), seconds_elapsed, z, y, x; TotalAcceleration in m/s^2, Gyroscope in rad/s."""
    t, acc, _ = motion(rate=100.0, seed=2)
    tg, _, gyr = motion(rate=100.0, seed=2, t_shift=0.003)
    ns0 = int(START.timestamp() * 1e9)
    for name, tt, x in (("TotalAcceleration.csv", t, acc), ("Gyroscope.csv", tg, gyr)):
        _write(d / name, ["time,seconds_elapsed,z,y,x"] + [f"{ns0 + int(round(tt[i] * 1e9))},{tt[i]:.6f},{x[i,2]:.6f},{x[i,1]:.6f},{x[i,0]:.6f}" for i in range(len(tt))])
    return [f"acc={d / 'TotalAcceleration.csv'}", f"gyr={d / 'Gyroscope.csv'}", "--columns", "t_ns=time,x=x,y=y,z=z"], len(t)


def movesense(d: Path):
    """Movesense (Showcase app, IMU6 at 52 Hz): one CSV, device timestamp in ms, acc in m/s^2, gyro in dps."""
    t, acc, gyr = motion(rate=52.0, seed=3)
    ms = 123456 + np.round(t * 1000).astype(int)
    g = np.degrees(gyr)
    _write(d / "movesense_imu6.csv", ["Timestamp,AccX,AccY,AccZ,GyroX,GyroY,GyroZ"] + [f"{ms[i]},{acc[i,0]:.4f},{acc[i,1]:.4f},{acc[i,2]:.4f},{g[i,0]:.3f},{g[i,1]:.3f},{g[i,2]:.3f}" for i in range(len(t))])
    return [str(d / "movesense_imu6.csv"), "--columns", "t_ms=Timestamp,ax=AccX,ay=AccY,az=AccZ,gx=GyroX,gy=GyroY,gz=GyroZ", "--gyr-unit", "dps"], len(t)


def shimmer(d: Path):
    """Shimmer3 via Consensys: an Excel 'sep=' line, then names, a CAL row, a units row; tabs;
    Unix time in ms; low-noise accelerometer in m/(s^2), gyroscope in deg/s."""
    t, acc, gyr = motion(rate=51.2, seed=4)
    ms = START.timestamp() * 1000 + t * 1000
    g = np.degrees(gyr)
    dev = "Shimmer_8C3F"
    names = [f"{dev}_Timestamp_Unix_CAL"] + [f"{dev}_Accel_LN_{a}_CAL" for a in "XYZ"] + [f"{dev}_Gyro_{a}_CAL" for a in "XYZ"]
    lines = ['"sep=\t"', "\t".join(names) + "\t", "\t".join(["CAL"] * 7) + "\t", "\t".join(["ms"] + ["m/(s^2)"] * 3 + ["deg/s"] * 3) + "\t"]
    lines += ["\t".join([f"{ms[i]:.3f}", *(f"{v:.6f}" for v in acc[i]), *(f"{v:.6f}" for v in g[i])]) + "\t" for i in range(len(t))]
    _write(d / "shimmer_session1.csv", lines)
    cols = f"t_ms={names[0]}," + ",".join(f"{k}={n}" for k, n in zip(["ax", "ay", "az", "gx", "gy", "gz"], names[1:]))
    return [str(d / "shimmer_session1.csv"), "--columns", cols, "--gyr-unit", "dps"], len(t)


def xsens_dot(d: Path):
    """Xsens DOT (Movella DOT app) export: metadata lines, then PacketCounter, SampleTimeFine (us),
    Euler angles, Acc_X.. in m/s^2, Gyr_X.. in deg/s."""
    t, acc, gyr = motion(rate=60.0, seed=5)
    us = 2_000_000_000 + np.round(t * 1e6).astype(np.int64)
    g = np.degrees(gyr)
    lines = ["DOT SDK version: 2023.6.0", "Device tag: Xsens DOT", "Firmware version: 2.6.0", "Filter profile: General", "Measurement mode: Custom mode 4",
             "PacketCounter,SampleTimeFine,Euler_X,Euler_Y,Euler_Z,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z"]
    lines += [f"{i},{us[i]},0.00,{-np.degrees(np.arcsin(acc[i,2] / G)):.2f},0.00,{acc[i,0]:.5f},{acc[i,1]:.5f},{acc[i,2]:.5f},{g[i,0]:.4f},{g[i,1]:.4f},{g[i,2]:.4f}" for i in range(len(t))]
    _write(d / "xsens_dot_D422CD.csv", lines)
    return [str(d / "xsens_dot_D422CD.csv"), "--columns", "t_us=SampleTimeFine,ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z", "--gyr-unit", "dps"], len(t)


def metabase(d: Path):
    """MbientLab MetaBase: one CSV per sensor; epoch (ms), a local time with dots, elapsed (s),
    x-axis (g) / x-axis (deg/s)."""
    t, acc, _ = motion(rate=100.0, seed=6)
    tg, _, gyr = motion(rate=100.0, seed=6, t_shift=0.002)
    out = []
    for name, tt, x, unit in (("MetaWear_Accelerometer.csv", t, acc / G, "g"), ("MetaWear_Gyroscope.csv", tg, np.degrees(gyr), "deg/s")):
        lines = [f"epoch (ms),time (+00:00),elapsed (s),x-axis ({unit}),y-axis ({unit}),z-axis ({unit})"]
        for i in range(len(tt)):
            when = START + timedelta(seconds=float(tt[i]))
            lines.append(f"{int(round(START.timestamp() * 1000 + tt[i] * 1000))},{when.strftime('%Y-%m-%dT%H.%M.%S.')}{when.microsecond // 1000:03d},{tt[i]:.3f},{x[i,0]:.4f},{x[i,1]:.4f},{x[i,2]:.4f}")
        _write(d / name, lines)
        out.append(d / name)
    return [f"acc={out[0]}", f"gyr={out[1]}", "--columns", "t_ms=1,x=4,y=5,z=6", "--acc-unit", "g", "--gyr-unit", "dps"], len(t)


def ngimu(d: Path):
    """x-io NGIMU (NGIMU GUI, logged to CSV): sensors.csv with Time (s), gyroscope (deg/s) first,
    accelerometer (g), magnetometer (uT), barometer (hPa)."""
    t, acc, gyr = motion(rate=100.0, seed=7)
    a, g = acc / G, np.degrees(gyr)
    head = "Time (s),Gyroscope X (deg/s),Gyroscope Y (deg/s),Gyroscope Z (deg/s),Accelerometer X (g),Accelerometer Y (g),Accelerometer Z (g),Magnetometer X (uT),Magnetometer Y (uT),Magnetometer Z (uT),Barometer (hPa)"
    _write(d / "sensors.csv", [head] + [f"{t[i] + 12.5:.3f},{g[i,0]:.4f},{g[i,1]:.4f},{g[i,2]:.4f},{a[i,0]:.5f},{a[i,1]:.5f},{a[i,2]:.5f},21.3,-4.2,40.1,1013.2" for i in range(len(t))])
    return [str(d / "sensors.csv"), "--columns", "t=1,gx=2,gy=3,gz=4,ax=5,ay=6,az=7", "--acc-unit", "g", "--gyr-unit", "dps"], len(t)


def witmotion(d: Path):
    """WitMotion (its PC software's saved data): tab-separated .txt, a clock time, ChipTime,
    ax(g).., wx(deg/s).., AngleX(deg).."""
    t, acc, gyr = motion(rate=100.0, seed=8)
    a, g = acc / G, np.degrees(gyr)
    lines = ["Time\tChipTime\tax(g)\tay(g)\taz(g)\twx(deg/s)\twy(deg/s)\twz(deg/s)\tAngleX(deg)\tAngleY(deg)\tAngleZ(deg)\tT(°)"]
    for i in range(len(t)):
        when = START + timedelta(seconds=float(t[i]))
        clock = f"{when.strftime('%H:%M:%S')}.{when.microsecond // 1000:03d}"
        lines.append(f" {clock}\t{when.strftime('%Y-%m-%d %H:%M:%S')}.{when.microsecond // 1000:03d}\t{a[i,0]:.4f}\t{a[i,1]:.4f}\t{a[i,2]:.4f}\t{g[i,0]:.4f}\t{g[i,1]:.4f}\t{g[i,2]:.4f}\t0.0\t0.0\t0.0\t25.1")
    _write(d / "witmotion_data.txt", lines)
    return [str(d / "witmotion_data.txt"), "--columns", "t=Time,ax=ax(g),ay=ay(g),az=az(g),gx=wx(deg/s),gy=wy(deg/s),gz=wz(deg/s)",
            "--acc-unit", "g", "--gyr-unit", "dps", "--date", "2026-12-06"], len(t)


def arduino_mpu6050(d: Path):
    """An Arduino sketch printing an MPU-6050's raw readings over serial (the i2cdevlib example's
    'a/g:' lines, tab-separated), saved from the serial monitor: start-up lines, no header, no time,
    raw counts (16384 per g at 2 g, 131 per dps at 250 dps)."""
    t, acc, gyr = motion(rate=100.0, seed=9)
    a = np.round(acc / G * 16384).astype(int)
    g = np.round(np.degrees(gyr) * 131 + np.array([-45, 23, 11])).astype(int)
    lines = ["Initializing I2C devices...", "Testing device connections...", "MPU6050 connection successful"]
    lines += ["a/g:\t" + "\t".join(str(v) for v in (*a[i], *g[i])) for i in range(len(t))]
    _write(d / "serial_log.txt", lines, newline="\r\n")
    return [str(d / "serial_log.txt"), "--columns", "ax=2,ay=3,az=4,gx=5,gy=6,gz=7", "--rate", "100", "--acc-unit", "counts", "--acc-scale", "16384",
            "--gyr-unit", "counts", "--gyr-scale", "131"], len(t)


def r_write_csv(d: Path):
    """R's write.csv(df, "trial.csv"): every header field and string quoted, a first column
    named "" of quoted row numbers, NA where a value is missing."""
    t, acc, gyr = motion(rate=100.0, seed=10)
    lines = ['"","subject","time","acc_x","acc_y","acc_z","gyro_x","gyro_y","gyro_z","comment"']
    lines += [f'"{i + 1}","carla",{t[i]:.2f},{acc[i,0]:.6f},{acc[i,1]:.6f},{acc[i,2]:.6f},{gyr[i,0]:.6f},{gyr[i,1]:.6f},{gyr[i,2]:.6f},NA' for i in range(len(t))]
    _write(d / "trial.csv", lines)
    return [str(d / "trial.csv"), "--columns", "t=time,ax=acc_x,ay=acc_y,az=acc_z,gx=gyro_x,gy=gyro_y,gz=gyro_z"], len(t)


def european_spreadsheet(d: Path):
    """A spreadsheet saved as CSV in a European locale (Excel, LibreOffice): semicolons, decimal
    commas, dd.mm.yyyy times, Windows-1252 (a degree sign in a header)."""
    t, acc, gyr = motion(rate=50.0, seed=11)
    g = np.degrees(gyr)

    def c(v: float) -> str:
        return f"{v:.4f}".replace(".", ",")

    lines = ["Zeit;Beschl. X [m/s²];Beschl. Y [m/s²];Beschl. Z [m/s²];Drehrate X [°/s];Drehrate Y [°/s];Drehrate Z [°/s]"]
    for i in range(len(t)):
        when = START + timedelta(seconds=float(t[i]))
        lines.append(f"{when.strftime('%d.%m.%Y %H:%M:%S')},{when.microsecond // 1000:03d};" + ";".join(c(v) for v in (*acc[i], *g[i])))
    _write(d / "messung.csv", lines, encoding="cp1252", newline="\r\n")
    return [str(d / "messung.csv"), "--columns", "t=1,ax=2,ay=3,az=4,gx=5,gy=6,gz=7", "--gyr-unit", "dps"], len(t)


FORMATS = {
    "phyphox": phyphox,
    "sensor-logger": sensor_logger,
    "movesense": movesense,
    "shimmer-consensys": shimmer,
    "xsens-dot": xsens_dot,
    "mbientlab-metabase": metabase,
    "xio-ngimu": ngimu,
    "witmotion": witmotion,
    "arduino-mpu6050": arduino_mpu6050,
    "r-write-csv": r_write_csv,
    "european-spreadsheet": european_spreadsheet,
}


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "import-corpus")
    for name, writer in FORMATS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        argv, rows = writer(folder)
        print(f"{name}: spinemon import {' '.join(argv)}   ({rows} rows)")
