# Pin map (docs/hardware.md, wiring table). Edit here for another board.

# classic ESP32 DevKit (WROOM-32)
ESP32 = {
    "i2c_id": 0,
    "sda": 21,
    "scl": 22,
    "motor": 25,
    "battery": 34,  # ADC1 (ADC2 is unusable while the radio is on)
    "button": 0,  # BOOT button, active low
}

# ESP32-S3 DevKitC-1
ESP32S3 = {
    "i2c_id": 0,
    "sda": 8,
    "scl": 9,
    "motor": 4,
    "battery": 1,  # ADC1_CH0
    "button": 0,  # BOOT button, active low
}

I2C_FREQ = 400000
MOTOR_PWM_FREQ = 200
BATTERY_DIVIDER = 2.0  # 100k/100k divider from the cell to the ADC pin
IMU_ADDRESSES = (0x6A, 0x6B)  # LSM6DSO(X): SA0 low = upper, high = lower
MPU_ADDRESSES = (0x68, 0x69)  # GY-521: AD0 low = upper, high = lower
