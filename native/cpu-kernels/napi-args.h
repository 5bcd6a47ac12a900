// Small helpers for Node-API functions: argument access with checks that throw Error (turned
// into a JavaScript exception by guarded()), and value constructors.
#pragma once
#include <node_api.h>

#include <cstring>
#include <string>

#include "model.h"
#include "pack.h"

namespace ck::napi {


struct Error {
  std::string message;
};

class Args {
 public:
  Args(napi_env env, napi_callback_info info, size_t expected) : env_(env) {
    size_t argc = 12;
    napi_get_cb_info(env, info, &argc, argv_, nullptr, nullptr);
    if (argc < expected) throw Error{"expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc)};
    count_ = argc;
  }
  napi_value operator[](size_t i) const { return argv_[i]; }
  size_t size() const { return count_; }

  double number(size_t i, const char* what) const {
    double v;
    if (napi_get_value_double(env_, argv_[i], &v) != napi_ok) throw Error{std::string(what) + " must be a number"};
    return v;
  }
  int64_t integer(size_t i, const char* what) const {
    const double v = number(i, what);
    if (v != double(int64_t(v))) throw Error{std::string(what) + " must be an integer"};
    return int64_t(v);
  }
  std::string string(size_t i, const char* what) const {
    char buf[64];
    size_t len;
    if (napi_get_value_string_utf8(env_, argv_[i], buf, sizeof buf, &len) != napi_ok) throw Error{std::string(what) + " must be a string"};
    return std::string(buf, len);
  }
  bool is_null(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    return t == napi_null || t == napi_undefined;
  }
  template <typename T>
  T* typed(size_t i, napi_typedarray_type want, size_t* length, const char* what) const {
    bool is;
    napi_is_typedarray(env_, argv_[i], &is);
    if (!is) throw Error{std::string(what) + " must be a typed array"};
    napi_typedarray_type type;
    void* data;
    napi_get_typedarray_info(env_, argv_[i], &type, length, &data, nullptr, nullptr);
    if (type != want) throw Error{std::string(what) + " has the wrong element type"};
    return static_cast<T*>(data);
  }
  ck::Model* model(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    if (t != napi_external) throw Error{"expected a model handle"};
    void* p;
    napi_get_value_external(env_, argv_[i], &p);
    return static_cast<ck::Model*>(p);
  }
  napi_value get(size_t i, const char* key) const {
    napi_value v;
    if (napi_get_named_property(env_, argv_[i], key, &v) != napi_ok) throw Error{std::string("missing ") + key};
    return v;
  }
  double field(size_t i, const char* key) const {
    double v;
    if (napi_get_value_double(env_, get(i, key), &v) != napi_ok) throw Error{std::string(key) + " must be a number"};
    return v;
  }

 private:
  napi_env env_;
  napi_value argv_[12];
  size_t count_ = 0;
};

template <typename Fn>
napi_value guarded(napi_env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    napi_throw_error(env, nullptr, e.message.c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return nullptr;
}

inline napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

inline napi_value make_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

inline napi_value make_string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

inline ck::ScaleType scale_type(const std::string& s) {
  if (s == "F16") return ck::ScaleType::F16;
  if (s == "BF16") return ck::ScaleType::BF16;
  if (s == "F32") return ck::ScaleType::F32;
  throw Error{"unsupported dtype " + s};
}

inline size_t scale_size(ck::ScaleType t) { return t == ck::ScaleType::F32 ? 4 : 2; }

inline napi_value new_bytes(napi_env env, const void* data, size_t n) {
  void* out;
  napi_value ab, arr;
  napi_create_arraybuffer(env, n, &out, &ab);
  if (n) std::memcpy(out, data, n);
  napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &arr);
  return arr;
}


}  // namespace ck::napi
