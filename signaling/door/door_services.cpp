#include "door/door_services.h"

#include <glib-unix.h>

#include "common/event_writer.h"
#include "common/log.h"

namespace portier::door {

DoorServices::DoorServices(const DoorSettings &settings, EventLine event_line)
    : settings_(settings),
      event_line_(std::move(event_line)),
      gate_(settings.parts.codes(), settings.parts.access) {}

DoorServices::~DoorServices() {
  if (button_source_) g_source_remove(button_source_);
  for (auto &r : running_)
    if (r->source) g_source_remove(r->source);
}

bool DoorServices::open(std::string *error) {
  if (!open_actuators(settings_.parts, &actuators_, error)) return false;
  std::string berr;
  button_ = open_button(settings_.parts.button, &berr);
  if (!button_ && !berr.empty()) {
    *error = berr;
    return false;
  }
  if (!settings_.parts.events.dir.empty()) {
    if (!log_.open(settings_.parts.events, error)) return false;
    log_open_ = true;
  }
  PLOG_INFO("door: %zu action(s), %zu identit%s allowed, button %s, events %s",
            settings_.parts.actions.size(), settings_.parts.access.allow.size(),
            settings_.parts.access.allow.size() == 1 ? "y" : "ies",
            button_ ? "on" : "none (portierctl ring)",
            log_open_ ? settings_.parts.events.dir.c_str() : "not kept");
  return true;
}

void DoorServices::log_event(EventKind kind, const std::string &who, const std::string &action,
                             const std::string &result, const std::string &detail,
                             const std::string &snapshot) {
  if (!log_open_) return;
  DoorEvent e;
  e.kind = kind;
  e.ring = ring_;
  e.who = who;
  e.action = action;
  e.result = result;
  e.detail = detail;
  e.snapshot = snapshot;
  std::string error;
  if (!log_.write(e, clock::Stamp::now(), &error)) PLOG_WARN("events: %s", error.c_str());
}

DoorHooks DoorServices::hooks() {
  DoorHooks h;
  h.digit = [this](const std::string &who, char key) { return on_key(who, key); };
  h.code = [this](const std::string &who, const std::string &code) { return on_code(who, code); };
  h.telephone_event = [this](uint32_t ts, uint16_t seq, bool marker,
                             const std::vector<uint8_t> &payload) {
    auto r = dtmf_.feed(ts, seq, marker, payload.data(), payload.size());
    if (!r.reason.empty()) PLOG_DEBUG("dtmf: %s", r.reason.c_str());
    return r.keys;
  };
  h.call_started = [this] { dtmf_.reset(); };
  h.call_ended = [this](const std::string &who) { gate_.forget_keys(who); };
  h.event = [this](const std::string &kind, const std::string &details) {
    if (kind == "ring") {
      ring_time_ = clock::Stamp::now();
      ring_ = events::file_stamp(ring_time_.wall_ms);
    } else if (kind == "answered" || kind == "auto_answered") {
      const size_t at = details.find('=');
      log_event(EventKind::Answered, at == std::string::npos ? details : details.substr(at + 1), "",
                kind, "");
    } else if (kind == "ended") {
      log_event(EventKind::Ended, "", "", "", details);
      ring_.clear();
    }
    event_line_(kind, details);
  };
  h.ring_snapshot = [this](const std::string &jpeg, const std::string &error) {
    std::string file, err;
    if (!jpeg.empty() && log_open_ &&
        !log_.save_snapshot(ring_time_, jpeg.data(), jpeg.size(), &file, &err))
      PLOG_WARN("events: snapshot: %s", err.c_str());
    log_event(EventKind::Ring, "", "", jpeg.empty() ? "no_snapshot" : "rang", error, file);
    event_line_("snapshot", file.empty() ? (error.empty() ? "not kept" : error) : file);
  };
  return h;
}

std::string DoorServices::on_key(const std::string &who, char key) {
  return decide(who, gate_.key(who, key, Clock::now()));
}

std::string DoorServices::on_code(const std::string &who, const std::string &code) {
  return decide(who, gate_.code(who, code, Clock::now()));
}

// One line per outcome; no code and no typed key ever reaches a log.
std::string DoorServices::decide(const std::string &who, const Decision &d) {
  if (d.verdict == Verdict::Pending) return "";
  if (d.verdict != Verdict::Accepted) {
    ++refused_;
    log_event(EventKind::ActionRefused, who, "", verdict_name(d.verdict), d.reason);
    PLOG_INFO("door: action refused for %s: %s", who.c_str(), d.reason.c_str());
    if (d.alarm) {
      // Someone is guessing the code: the residents hear of it at once.
      ++alarms_;
      const auto &acc = settings_.parts.access;
      const std::string text =
          std::to_string(acc.global_max_wrong_codes) + " wrong door codes within " +
          std::to_string(acc.wrong_code_window.count()) + " s, the last from " + who;
      PLOG_WARN("door: alarm: %s", text.c_str());
      event_line_("alarm", "wrong_codes=" + std::to_string(acc.global_max_wrong_codes) +
                               " window_s=" + std::to_string(acc.wrong_code_window.count()) +
                               " last_from=" + who);
      if (alarm_) alarm_(text);
    }
    return std::string("refused=") + verdict_name(d.verdict);
  }
  auto it = actuators_.by_action.find(d.action);
  Actuator *a = it == actuators_.by_action.end() ? nullptr : it->second;
  if (!a) return "error=no actuator for " + d.action;
  const PulseResult r = a->pulse(d.action);
  PLOG_INFO("door: action %s for %s: %s %s", d.action.c_str(), who.c_str(),
            pulse_status_name(r.status), r.reason.c_str());
  log_event(EventKind::Action, who, d.action, pulse_status_name(r.status), r.reason);
  if (r.status == PulseStatus::Started && a->fd() >= 0) {
    auto run = std::make_unique<Running>(Running{this, d.action, a, 0});
    run->source = g_unix_fd_add(a->fd(), G_IO_IN, on_actuator, run.get());
    running_.push_back(std::move(run));
  }
  if (r.status == PulseStatus::Started || r.status == PulseStatus::Done) ++opened_;
  return "action=" + d.action + " result=" + pulse_status_name(r.status);
}

// The pulse's child ended: its outcome goes to the log, and the actuator is
// free for the next one.
gboolean DoorServices::on_actuator(gint, GIOCondition, gpointer data) {
  auto *run = static_cast<Running *>(data);
  DoorServices *self = run->self;
  if (auto r = run->actuator->finish()) {
    PLOG_INFO("door: action %s %s %s", run->action.c_str(), pulse_status_name(r->status),
              r->reason.c_str());
    self->log_event(EventKind::Action, "", run->action, pulse_status_name(r->status), r->reason);
    self->event_line_("action_done",
                      "action=" + run->action + " result=" + pulse_status_name(r->status));
  }
  for (auto it = self->running_.begin(); it != self->running_.end(); ++it)
    if (it->get() == run) {
      self->running_.erase(it);  // run is gone now
      break;
    }
  return G_SOURCE_REMOVE;
}

void DoorServices::watch_button(std::function<void()> press) {
  press_ = std::move(press);
  if (button_) button_source_ = g_unix_fd_add(button_->fd(), G_IO_IN, on_button, this);
}

gboolean DoorServices::on_button(gint, GIOCondition, gpointer data) {
  auto *self = static_cast<DoorServices *>(data);
  std::string error;
  const int presses = self->button_->read_presses(&error);
  if (presses < 0) {
    PLOG_ERROR("door: the button is gone (%s): ring with portierctl ring", error.c_str());
    self->log_event(EventKind::Error, "", "", "button_gone", error);
    self->button_source_ = 0;
    self->button_.reset();
    return G_SOURCE_REMOVE;
  }
  if (presses > 0 && self->press_) self->press_();
  return G_SOURCE_CONTINUE;
}

void DoorServices::write_status(json::Writer &w) const {
  w.field("actions_run", opened_)
      .field("actions_refused", refused_)
      .field("alarms", alarms_)
      .field("button", button_ != nullptr)
      .field("event_log", log_open_ ? log_.current_file() : "");
}

}  // namespace portier::door
