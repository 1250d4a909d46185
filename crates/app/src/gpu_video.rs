//! Video drawn on the GPU: the decoder's Y, U and V planes are uploaded as three one-channel
//! textures and turned into colour by a fragment shader, inside an `egui_glow` paint callback.
//! The UI thread does no per-pixel work: no I420 → RGBA conversion, no `Color32` copy, no
//! RGBA re-upload (the CPU path in [`crate::video`] does all three).
//!
//! The GL objects live in one [`GlVideo`] kept in the egui context's data for the life of the
//! window, so calls reuse them (nothing leaks per call); textures are reallocated only when a
//! stream's size changes, otherwise re-filled with `glTexSubImage2D`.
//!
//! Needs GLSL 1.40 or ES 3.00 (`gl_VertexID`, one-channel `R8` textures). On older GL, or if the
//! shader does not build, [`GlVideo::unsupported`] says why and the app falls back to the CPU
//! path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use eframe::egui_glow;
use eframe::glow::{self, HasContext as _};
use egui::{Id, Rect};
use media::VideoFrame;

const VERTEX: &str = r"
out vec2 v_tc;
uniform float u_mirror;
void main() {
    // A quad filling the viewport egui set to the callback's rectangle, as a triangle strip.
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1));
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
    float u = mix(corner.x, 1.0 - corner.x, u_mirror);
    v_tc = vec2(u, 1.0 - corner.y);
}
";

// BT.601, limited range: what the decoders output and what `VideoFrame::write_rgba` assumes.
// egui paints in gamma space (no sRGB framebuffer), so the result is written as is.
const FRAGMENT: &str = r"
in vec2 v_tc;
out vec4 f_color;
uniform sampler2D u_y;
uniform sampler2D u_u;
uniform sampler2D u_v;
void main() {
    float y = 1.16438 * (texture(u_y, v_tc).r - 0.0627451);
    float u = texture(u_u, v_tc).r - 0.501961;
    float v = texture(u_v, v_tc).r - 0.501961;
    vec3 rgb = vec3(y + 1.59603 * v, y - 0.391762 * u - 0.812968 * v, y + 2.01723 * u);
    f_color = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
";

/// One stream's three plane textures and their size.
struct PlaneTextures {
    planes: [glow::Texture; 3],
    size: [u32; 2],
}

struct Program {
    program: glow::Program,
    vao: glow::VertexArray,
    u_mirror: Option<glow::UniformLocation>,
}

/// The GL side, shared by every stream of the window.
#[derive(Default)]
pub struct GlVideo {
    program: Option<Program>,
    streams: HashMap<&'static str, PlaneTextures>,
    unsupported: Option<String>,
}

/// The handle the UI keeps in the egui context.
pub type SharedGlVideo = Arc<Mutex<GlVideo>>;

fn lock(gl: &SharedGlVideo) -> std::sync::MutexGuard<'_, GlVideo> {
    gl.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The window's GL video state (created empty on first use).
pub fn shared(ctx: &egui::Context) -> SharedGlVideo {
    ctx.data_mut(|d| {
        d.get_temp_mut_or_default::<SharedGlVideo>(Id::unique("duet-gpu-video"))
            .clone()
    })
}

impl GlVideo {
    /// Why the GPU path cannot run here, once a paint has found out.
    pub fn unsupported(gl: &SharedGlVideo) -> Option<String> {
        lock(gl).unsupported.clone()
    }

    /// Frees every GL object (the window is closing).
    pub fn destroy(gl_video: &SharedGlVideo, gl: &glow::Context) {
        let mut this = lock(gl_video);
        // SAFETY: called with the window's current context, which created these objects.
        unsafe {
            for (_, s) in this.streams.drain() {
                for t in s.planes {
                    gl.delete_texture(t);
                }
            }
            if let Some(p) = this.program.take() {
                gl.delete_program(p.program);
                gl.delete_vertex_array(p.vao);
            }
        }
    }

    fn program(&mut self, gl: &glow::Context) -> Option<&Program> {
        if self.program.is_none() && self.unsupported.is_none() {
            match build_program(gl) {
                Ok(p) => self.program = Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "video on the GPU is not available; drawing it on the CPU");
                    self.unsupported = Some(e);
                }
            }
        }
        self.program.as_ref()
    }

    /// Uploads `frame` into `stream`'s textures (reallocated when the size changed).
    fn upload(&mut self, gl: &glow::Context, stream: &'static str, frame: &VideoFrame) {
        let size = [frame.width(), frame.height()];
        // SAFETY: plain GL calls on the current context; the slices outlive the calls and
        // hold exactly width×height (Y) and width/2×height/2 (U, V) bytes.
        unsafe {
            let textures = match self.streams.get_mut(stream) {
                Some(t) if t.size == size => t,
                _ => {
                    if let Some(old) = self.streams.remove(stream) {
                        for t in old.planes {
                            gl.delete_texture(t);
                        }
                    }
                    let mut planes = Vec::with_capacity(3);
                    for (w, h) in plane_sizes(size) {
                        let Ok(t) = gl.create_texture() else {
                            return;
                        };
                        gl.bind_texture(glow::TEXTURE_2D, Some(t));
                        for (k, v) in [
                            (glow::TEXTURE_MIN_FILTER, glow::LINEAR),
                            (glow::TEXTURE_MAG_FILTER, glow::LINEAR),
                            (glow::TEXTURE_WRAP_S, glow::CLAMP_TO_EDGE),
                            (glow::TEXTURE_WRAP_T, glow::CLAMP_TO_EDGE),
                        ] {
                            gl.tex_parameter_i32(glow::TEXTURE_2D, k, v as i32);
                        }
                        gl.tex_image_2d(
                            glow::TEXTURE_2D,
                            0,
                            glow::R8 as i32,
                            w as i32,
                            h as i32,
                            0,
                            glow::RED,
                            glow::UNSIGNED_BYTE,
                            glow::PixelUnpackData::Slice(None),
                        );
                        planes.push(t);
                    }
                    let Ok(planes) = <[glow::Texture; 3]>::try_from(planes) else {
                        return;
                    };
                    self.streams
                        .entry(stream)
                        .or_insert(PlaneTextures { planes, size })
                }
            };
            gl.pixel_store_i32(glow::UNPACK_ALIGNMENT, 1);
            let data = [frame.y(), frame.u(), frame.v()];
            for ((t, (w, h)), bytes) in textures.planes.iter().zip(plane_sizes(size)).zip(data) {
                gl.bind_texture(glow::TEXTURE_2D, Some(*t));
                gl.tex_sub_image_2d(
                    glow::TEXTURE_2D,
                    0,
                    0,
                    0,
                    w as i32,
                    h as i32,
                    glow::RED,
                    glow::UNSIGNED_BYTE,
                    glow::PixelUnpackData::Slice(Some(bytes)),
                );
            }
        }
    }

    fn draw(&mut self, gl: &glow::Context, stream: &'static str, mirror: bool) {
        let Some(program) = self.program(gl) else {
            return;
        };
        let (prog, vao, u_mirror) = (program.program, program.vao, program.u_mirror);
        let Some(textures) = self.streams.get(stream) else {
            return;
        };
        // SAFETY: plain GL calls on the current context with objects it created; egui_glow
        // restores its own state after the callback.
        unsafe {
            gl.use_program(Some(prog));
            gl.uniform_1_f32(u_mirror.as_ref(), if mirror { 1.0 } else { 0.0 });
            for (i, t) in textures.planes.iter().enumerate() {
                gl.active_texture(glow::TEXTURE0 + i as u32);
                gl.bind_texture(glow::TEXTURE_2D, Some(*t));
            }
            gl.disable(glow::BLEND);
            gl.bind_vertex_array(Some(vao));
            gl.draw_arrays(glow::TRIANGLE_STRIP, 0, 4);
            gl.bind_vertex_array(None);
            gl.active_texture(glow::TEXTURE0);
        }
    }
}

fn plane_sizes([w, h]: [u32; 2]) -> [(u32, u32); 3] {
    [(w, h), (w / 2, h / 2), (w / 2, h / 2)]
}

fn build_program(gl: &glow::Context) -> Result<Program, String> {
    let version = egui_glow::ShaderVersion::get(gl);
    let header = match version {
        egui_glow::ShaderVersion::Gl140 => "#version 140\n",
        egui_glow::ShaderVersion::Es300 => "#version 300 es\nprecision mediump float;\n",
        other => return Err(format!("GLSL {other:?} is too old (needs 1.40 or ES 3.00)")),
    };
    // SAFETY: shader and program creation on the current context; every object is deleted
    // on the error paths.
    unsafe {
        let program = gl.create_program()?;
        let mut shaders = Vec::new();
        for (kind, body) in [
            (glow::VERTEX_SHADER, VERTEX),
            (glow::FRAGMENT_SHADER, FRAGMENT),
        ] {
            let shader = gl.create_shader(kind)?;
            gl.shader_source(shader, &format!("{header}{body}"));
            gl.compile_shader(shader);
            if !gl.get_shader_compile_status(shader) {
                let log = gl.get_shader_info_log(shader);
                gl.delete_shader(shader);
                gl.delete_program(program);
                return Err(format!("the video shader does not compile: {log}"));
            }
            gl.attach_shader(program, shader);
            shaders.push(shader);
        }
        gl.link_program(program);
        for s in shaders {
            gl.detach_shader(program, s);
            gl.delete_shader(s);
        }
        if !gl.get_program_link_status(program) {
            let log = gl.get_program_info_log(program);
            gl.delete_program(program);
            return Err(format!("the video shader does not link: {log}"));
        }
        gl.use_program(Some(program));
        for (i, name) in ["u_y", "u_u", "u_v"].into_iter().enumerate() {
            gl.uniform_1_i32(gl.get_uniform_location(program, name).as_ref(), i as i32);
        }
        let u_mirror = gl.get_uniform_location(program, "u_mirror");
        let vao = gl.create_vertex_array()?;
        Ok(Program {
            program,
            vao,
            u_mirror,
        })
    }
}

/// One stream drawn on the GPU. [`GpuVideo::set`] hands a new picture over (no copy: frames
/// are shared); the next paint uploads it.
pub struct GpuVideo {
    name: &'static str,
    pending: Arc<Mutex<Option<Arc<VideoFrame>>>>,
    upload_us: Arc<AtomicU64>,
}

impl std::fmt::Debug for GpuVideo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuVideo")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GpuVideo {
    /// A stream named `name` (one set of textures per name).
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            pending: Arc::default(),
            upload_us: Arc::default(),
        }
    }

    /// The picture to upload at the next paint (replaces one not yet uploaded).
    pub fn set(&self, frame: Arc<VideoFrame>) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = Some(frame);
    }

    /// Microseconds the paints spent uploading pictures, in total (UI thread).
    pub fn upload_us(&self) -> u64 {
        self.upload_us.load(Ordering::Relaxed)
    }

    /// The paint callback drawing the stream's latest picture into `rect`, mirrored if asked.
    pub fn paint(&self, gl_video: &SharedGlVideo, rect: Rect, mirror: bool) -> egui::PaintCallback {
        let (name, pending, upload_us, gl_video) = (
            self.name,
            self.pending.clone(),
            self.upload_us.clone(),
            gl_video.clone(),
        );
        egui::PaintCallback {
            rect,
            callback: Arc::new(egui_glow::CallbackFn::new(move |_info, painter| {
                let gl = painter.gl();
                let mut video = lock(&gl_video);
                if video.program(gl).is_none() {
                    return;
                }
                let frame = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(frame) = frame {
                    let started = Instant::now();
                    video.upload(gl, name, &frame);
                    upload_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                video.draw(gl, name, mirror);
            })),
        }
    }
}
