// Registrations survive a restart and a crash. Two files in the state directory:
// - the snapshot ("registrations"): the whole store, written through a
//   temporary file, fsync and rename(2), so a crash leaves the old or the new
//   file, never a torn one;
// - the journal ("registrations.journal"): one appended record per changed AOR
//   (its whole binding set, with a CRC), fdatasync'ed before the REGISTER's 200
//   is sent. A worker thread does the writes and syncs; changes that arrive
//   while it syncs go out together in the next write (group commit), so a
//   burst costs one fsync per batch, not per REGISTER.
// Loading reads the snapshot, then replays the journal; a crash's torn last
// record (never answered 200) is dropped. Compaction writes a new snapshot and
// empties the journal. A bad record is skipped and reported, never a reason
// not to start: one device's odd REGISTER must not keep the intercom down.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/location_store.h"

namespace portier::proxy {

class LocationPersister {
 public:
  struct LoadReport {
    size_t journal_records = 0;         // journal records replayed
    size_t torn_bytes = 0;              // the crash-cut tail of the journal, dropped
    std::vector<std::string> problems;  // "file:line: why" of every record skipped
    std::vector<std::string> kept;      // copies of the bad files, for the admin
  };

  explicit LocationPersister(std::string path);
  ~LocationPersister();
  LocationPersister(const LocationPersister &) = delete;
  LocationPersister &operator=(const LocationPersister &) = delete;

  // Loads the snapshot and replays the journal into store, dropping bindings
  // expired at `now`. A missing file is a first start. Bad records are skipped
  // (report->problems) and a copy of each bad file is kept beside it
  // ("<file>.bad-<unix time>"); false only when a file cannot be read at all.
  bool load(LocationStore &store, int64_t now, std::string *error, LoadReport *report = nullptr);
  // Writes the snapshot if the store's generation differs from the last one written.
  bool save(const LocationStore &store, std::string *error);
  // Writes the snapshot unconditionally.
  bool save_now(const LocationStore &store, std::string *error);

  // --- the journal (group commit) ---
  // One journal record: an AOR's whole binding set after a change (empty: the
  // AOR has no binding left). Replaying records in order gives the last state.
  static std::string journal_record(const std::string &aor, const std::vector<Binding> &bindings);
  // Queues records for the worker; returns the sequence number that
  // committed() reaches once they are on disk. Cheap: no I/O on this thread.
  uint64_t append(std::string records);
  // Queues a snapshot of the store followed by emptying the journal
  // (compaction); same sequence numbers as append().
  uint64_t compact_in_background(const LocationStore &store);
  // Synchronous compaction (start and stop): waits for the queue, writes the
  // snapshot, empties the journal.
  bool compact_now(const LocationStore &store, std::string *error);
  // Readable (an eventfd) whenever the worker finished something; the owner's
  // loop watches it and calls take_finished().
  int notify_fd() const { return event_fd_; }
  struct Finished {
    uint64_t seq;
    bool ok;
    std::string error;
  };
  // What the worker finished since the last call, in order.
  std::vector<Finished> take_finished();
  // Highest sequence number handed out; 0 before the first.
  uint64_t last_seq() const { return next_seq_ - 1; }
  // Bytes queued into the journal since the last compaction.
  uint64_t journal_bytes() const { return journal_bytes_; }
  // Waits until the worker has finished everything queued.
  void drain();

  const std::string &path() const { return path_; }
  std::string journal_path() const { return path_ + ".journal"; }
  // How many times the snapshot was written, so tests can tell a skipped save.
  uint64_t writes() const { return writes_; }

 private:
  static std::string serialize(const LocationStore &store);
  // Only reads path_: safe on the worker thread.
  bool write_file(const std::string &data, std::string *error) const;
  uint64_t enqueue(bool snapshot, std::string data);
  void worker();
  // Opens the journal if it is not open (worker thread only).
  bool open_journal(std::string *error);
  bool journal_write(const std::string &data, std::string *error);
  bool journal_truncate(std::string *error);

  std::string path_;
  uint64_t written_generation_ = UINT64_MAX;
  uint64_t writes_ = 0;

  struct Task {
    uint64_t seq;
    bool snapshot;
    std::string data;
    std::chrono::steady_clock::time_point queued;
  };
  // How long the worker collects appends before one write and one fdatasync.
  // Without it, at a steady rate each REGISTER got a sync (and two thread
  // wake-ups) of its own: fdatasync takes ~0.2 ms here, so the queue never
  // grew, and each one cost ~0.2 ms of kernel CPU in a VM (virtio). The cost
  // per REGISTER is that divided by the REGISTERs of a window: at 3,000/s,
  // 6 us with 10 ms (a tenth of what a REGISTER costs), 2.4 us with 25 ms.
  // At most 25 ms more before a 200 costs a device nothing (its
  // retransmission timer is 500 ms, RFC 3261 §17.1.2.2).
  static constexpr std::chrono::milliseconds kGroupCommitWindow{25};
  std::mutex mu_;
  std::condition_variable cv_;       // the worker waits for tasks
  std::condition_variable idle_cv_;  // drain() waits for the worker
  std::deque<Task> queue_;
  std::vector<Finished> finished_;
  bool busy_ = false;
  bool quit_ = false;
  bool hurry_ = false;  // drain(): no commit window, write what is queued now
  uint64_t next_seq_ = 1;
  uint64_t journal_bytes_ = 0;
  int journal_fd_ = -1;  // worker thread only
  bool journal_cut_ = false;  // worker thread only: the journal ends inside a record
  int event_fd_ = -1;
  std::thread thread_;
};

}  // namespace portier::proxy
