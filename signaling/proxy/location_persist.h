// Registrations survive a restart: the location store is written to a state file
// as a whole, through a temporary file, fsync and rename(2), so a crash at any
// moment leaves either the old or the new file, never a torn one. Writes are
// batched (the proxy calls save() from a timer when the store's generation moved)
// to keep file I/O off the REGISTER hot path.
#pragma once

#include <cstdint>
#include <future>
#include <string>
#include <utility>

#include "proxy/location_store.h"

namespace portier::proxy {

class LocationPersister {
 public:
  explicit LocationPersister(std::string path) : path_(std::move(path)) {}

  // Loads the file into store, dropping bindings expired at `now`. A missing file
  // is not an error (first start). A corrupt file is an error (message in *error),
  // and the store is left empty.
  bool load(LocationStore &store, int64_t now, std::string *error);
  // Writes the store if its generation differs from the last one written.
  bool save(const LocationStore &store, std::string *error);
  // Writes unconditionally.
  bool save_now(const LocationStore &store, std::string *error);
  // What the proxy calls every second: the proxy's thread only turns the store
  // into text (about a millisecond for 10,000 bindings); write, fsync and
  // rename, which can stall for tens of milliseconds on an SD card, run on a
  // worker thread, so a slow disk never holds up SIP. One write at a time;
  // false (with *error) when the previous background write failed.
  bool save_in_background(const LocationStore &store, std::string *error);
  // Waits for a background write to end; false when it failed.
  bool flush(std::string *error);

  const std::string &path() const { return path_; }
  // How many times the file was written, so tests can tell a skipped save.
  uint64_t writes() const { return writes_; }

 private:
  static std::string serialize(const LocationStore &store);
  // Only reads path_: safe on the worker thread.
  bool write_file(const std::string &data, std::string *error) const;
  bool collect(bool wait, std::string *error);

  std::string path_;
  std::future<std::pair<bool, std::string>> pending_;
  uint64_t pending_generation_ = 0;
  uint64_t written_generation_ = UINT64_MAX;
  uint64_t writes_ = 0;
};

}  // namespace portier::proxy
