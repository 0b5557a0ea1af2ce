#include "frontend/grpc/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <unordered_set>

namespace ferry::frontend::grpc {
namespace rv = ::grpc::reflection::v1alpha;
namespace pb = ::google::protobuf;

namespace {

// Adds `file` and, depth first, the files it imports, skipping those already sent.
void AddFile(const pb::FileDescriptor* file, std::unordered_set<std::string>* sent, rv::FileDescriptorResponse* out) {
  if (!sent->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), sent, out);
}

void SetError(rv::ServerReflectionResponse* out, ::grpc::StatusCode code, std::string message) {
  auto* e = out->mutable_error_response();
  e->set_error_code(static_cast<int32_t>(code));
  e->set_error_message(std::move(message));
}

}  // namespace

// One ServerReflectionInfo stream: read a request, write its answer, read the next, until
// the client half-closes. One operation in flight at a time (besides the done
// notification), so the stream needs no lock: its events arrive one after another.
class ReflectionService::Stream final : public CqHandler {
 public:
  Stream(ReflectionService* owner, LiveCalls* live, ::grpc::ServerCompletionQueue* cq)
      : owner_(owner), live_(live), cq_(cq) {
    live_->Add();
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    owner_->async_.RequestServerReflectionInfo(&ctx_, &stream_, cq, cq, &accepted_tag_);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kAccepted:
        if (!ok) {  // shutting down: the stream never started, so no other event comes
          delete this;
          return;
        }
        new Stream(owner_, live_, cq_);
        Read();
        return;
      case kRead:
        busy_ = false;
        if (!ok) {  // the client is done sending, or gone
          if (!done_) Finish();
          break;
        }
        response_ = owner_->Answer(request_);
        busy_ = true;
        stream_.Write(response_, &write_tag_);
        return;
      case kWrite:
        busy_ = false;
        if (ok && !done_) Read();
        break;
      case kFinish:
        busy_ = false;
        break;
      case kDone:
        done_ = true;
        break;
    }
    if (done_ && !busy_) delete this;
  }

 private:
  enum Op { kAccepted, kRead, kWrite, kFinish, kDone };

  ~Stream() override { live_->Remove(); }

  void Read() {
    busy_ = true;
    stream_.Read(&request_, &read_tag_);
  }
  void Finish() {
    busy_ = true;
    if (owner_->calls_ != nullptr) owner_->calls_->Count(::grpc::StatusCode::OK);
    stream_.Finish(::grpc::Status::OK, &finish_tag_);
  }

  ReflectionService* owner_;
  LiveCalls* live_;
  ::grpc::ServerCompletionQueue* cq_;
  ::grpc::ServerContext ctx_;
  ::grpc::ServerAsyncReaderWriter<rv::ServerReflectionResponse, rv::ServerReflectionRequest> stream_{&ctx_};
  rv::ServerReflectionRequest request_;
  rv::ServerReflectionResponse response_;
  bool busy_ = false;  // an operation other than the done notification is in flight
  bool done_ = false;
  CqTag accepted_tag_{this, kAccepted}, read_tag_{this, kRead}, write_tag_{this, kWrite},
      finish_tag_{this, kFinish}, done_tag_{this, kDone};
};

ReflectionService::ReflectionService(std::vector<std::string> services, CallCountSink* calls)
    : services_(std::move(services)), calls_(calls) {}

void ReflectionService::Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live) { new Stream(this, live, cq); }

rv::ServerReflectionResponse ReflectionService::Answer(const rv::ServerReflectionRequest& request) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  rv::ServerReflectionResponse out;
  out.set_valid_host(request.host());
  *out.mutable_original_request() = request;
  std::unordered_set<std::string> sent;
  switch (request.message_request_case()) {
    case rv::ServerReflectionRequest::kListServices:
      for (const auto& name : services_) out.mutable_list_services_response()->add_service()->set_name(name);
      break;
    case rv::ServerReflectionRequest::kFileByFilename: {
      const pb::FileDescriptor* file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        SetError(&out, ::grpc::StatusCode::NOT_FOUND, "file '" + request.file_by_filename() + "' not found");
      } else {
        AddFile(file, &sent, out.mutable_file_descriptor_response());
      }
      break;
    }
    case rv::ServerReflectionRequest::kFileContainingSymbol: {
      const pb::FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        SetError(&out, ::grpc::StatusCode::NOT_FOUND, "symbol '" + request.file_containing_symbol() + "' not found");
      } else {
        AddFile(file, &sent, out.mutable_file_descriptor_response());
      }
      break;
    }
    case rv::ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const pb::Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
      const pb::FieldDescriptor* field =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
      if (field == nullptr) {
        SetError(&out, ::grpc::StatusCode::NOT_FOUND,
                 "extension " + std::to_string(ext.extension_number()) + " of '" + ext.containing_type() +
                     "' not found");
      } else {
        AddFile(field->file(), &sent, out.mutable_file_descriptor_response());
      }
      break;
    }
    case rv::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(&out, ::grpc::StatusCode::NOT_FOUND,
                 "type '" + request.all_extension_numbers_of_type() + "' not found");
        break;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = out.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* f : extensions) numbers->add_extension_number(f->number());
      break;
    }
    case rv::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      SetError(&out, ::grpc::StatusCode::INVALID_ARGUMENT, "the request sets none of the message_request fields");
      break;
  }
  return out;
}

}  // namespace ferry::frontend::grpc
