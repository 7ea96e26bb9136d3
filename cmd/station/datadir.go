package main

import (
	"os"
	"path/filepath"
)

// AppDirName is the data directory's name under the user's application-data
// directory.
const AppDirName = "KeyStation"

// EnvData names the environment variable that may give the data directory.
const EnvData = "KEYSTATION_STATION_DATA"

// DefaultDataDir returns the station's data directory when --data is not
// given: KEYSTATION_STATION_DATA when set; the executable's directory when it
// sits on removable media (portable mode: the station and its data travel on
// a USB stick); else the user's application-data directory + KeyStation.
func DefaultDataDir() (dir string, portable bool, err error) {
	if v := os.Getenv(EnvData); v != "" {
		return v, false, nil
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if onRemovableMedia(exe) {
				return filepath.Dir(exe), true, nil
			}
		}
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", false, err
	}
	return filepath.Join(base, AppDirName), false, nil
}
